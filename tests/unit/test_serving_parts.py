import logging
import os
import sys
import threading
import time

import numpy as np
import pytest

from helpers.serving import auth, batching, codec, errors, launcher
from helpers.serving.errors import InvalidArgument, Unavailable
from helpers.serving.models import Signature, TensorSpec

IMAGE = TensorSpec("image", np.dtype("float32"), (None, 2))


class SlowDouble:
    """A fake signature: doubles its input and records the batch sizes it was called with."""

    def __init__(self, delay_s=0.05):
        self.calls, self.delay_s = [], delay_s
        self.inputs = {"image": IMAGE}

    def run(self, inputs):
        self.calls.append(len(inputs["image"]))
        time.sleep(self.delay_s)
        return {"double": inputs["image"] * 2}


def test_batching_parameters_text_format():
    text = "max_batch_size { value: 32 }\nbatch_timeout_micros { value: 500 }  # comment\n"
    assert batching.parse_batching_parameters(text) == batching.BatchingParameters(32, 500)
    with pytest.raises(ValueError, match="unsupported"):
        batching.parse_batching_parameters("max_batch_size { value: 32 } pad_variable_length_inputs: true")


def test_a_lone_request_runs_at_once_and_concurrent_ones_are_merged():
    signature = SlowDouble()
    batcher = batching.Batcher(batching.BatchingParameters(max_batch_size=16))
    started = time.perf_counter()
    alone = batcher.submit(("v1", "s"), signature, {"image": np.ones((1, 2), np.float32)}).result(5)
    assert time.perf_counter() - started < 1.0 and alone["double"].tolist() == [[2.0, 2.0]]
    futures = [batcher.submit(("v1", "s"), signature, {"image": np.full((1, 2), i, np.float32)})
               for i in range(10)]
    results = [future.result(5)["double"][0, 0] for future in futures]
    assert results == [2.0 * i for i in range(10)]           # each client gets its own rows
    assert max(signature.calls) > 1 and sum(signature.calls) == 11
    with pytest.raises(InvalidArgument, match="Task size 17 is larger than maximum input batch size 16"):
        batcher.submit(("v1", "s"), signature, {"image": np.ones((17, 2), np.float32)})
    batcher.stop()


def test_a_failing_batch_fails_every_request_in_it():
    class Broken(SlowDouble):
        def run(self, inputs):
            raise RuntimeError("model exploded")

    batcher = batching.Batcher()
    future = batcher.submit(("v", "s"), Broken(), {"image": np.ones((1, 2), np.float32)})
    with pytest.raises(RuntimeError, match="exploded"):
        future.result(5)
    batcher.stop()


def signature_with(*specs):
    return Signature("serving_default", {s.name: s for s in specs}, {}, function=None)


def test_row_and_columnar_requests():
    one = signature_with(IMAGE)
    inputs, form = codec.request_inputs({"instances": [[1, 2], [3, 4]]}, one)
    assert form == "row" and inputs["image"].dtype == np.float32 and inputs["image"].shape == (2, 2)
    inputs, form = codec.request_inputs({"inputs": {"image": [[1, 2]]}}, one)
    assert form == "columnar" and inputs["image"].shape == (1, 2)
    two = signature_with(TensorSpec("a", np.dtype("int32"), (None,)),
                         TensorSpec("tag", np.dtype("object"), (None,)))
    inputs, _ = codec.request_inputs({"instances": [{"a": 1, "tag": {"b64": "aGk="}},
                                                    {"a": 2, "tag": "x"}]}, two)
    assert inputs["a"].tolist() == [1, 2] and inputs["tag"].tolist() == [b"hi", "x"]
    with pytest.raises(InvalidArgument, match="keys must be equal to: a,tag"):
        codec.request_inputs({"instances": [{"a": 1}]}, two)
    with pytest.raises(InvalidArgument, match="base64"):
        codec.request_inputs({"inputs": {"a": [1], "tag": [{"b64": "%%"}]}}, two)
    with pytest.raises(InvalidArgument, match="instances is a plain list, but expecting list of objects"):
        codec.request_inputs({"instances": [1, 2]}, two)
    with pytest.raises(InvalidArgument, match="Expecting value/list but got object at item 1"):
        codec.request_inputs({"instances": [[1, 2], {"image": [1, 2]}]}, one)
    with pytest.raises(InvalidArgument, match="Missing named input: tag in 'inputs' object."):
        codec.request_inputs({"inputs": {"a": [1], "extra": [2]}}, two)


def test_json_values_of_the_wrong_type_are_refused_not_coerced():
    """As TF Serving's AddValueToTensor: no strings, booleans or fractions for numbers."""
    count = TensorSpec("n", np.dtype("uint8"), (None,))
    assert codec.to_tensor([0, 255], count).dtype == np.uint8
    for value, spec in (([["1.5", "2"]], IMAGE), ([[True, False]], IMAGE), ([1.5], count), ([256], count),
                        ([-1], count), ([[1, None]], IMAGE)):
        with pytest.raises(InvalidArgument, match="is not of expected type"):
            codec.to_tensor(value, spec)
    with pytest.raises(InvalidArgument, match="ragged"):
        codec.to_tensor([[1.0, 2.0], [1.0]], IMAGE)
    assert codec.to_tensor([[1, 2]], IMAGE).dtype == np.float32          # integers are numbers
    assert codec.signature_name({"signature_name": "s"}) == "s" and codec.signature_name({}) is None
    with pytest.raises(InvalidArgument, match="'signature_name' key must be a string value."):
        codec.signature_name({"signature_name": 1})


def test_grpc_inputs_must_be_exactly_the_signatures():
    import tensorflow as tf

    two = signature_with(IMAGE, TensorSpec("b", np.dtype("float32"), (None,)))
    protos = {"image": tf.make_tensor_proto(np.ones((1, 2), np.float32)), "c": tf.make_tensor_proto([1.0])}
    with pytest.raises(InvalidArgument) as error:
        codec.inputs_from_protos(protos, two)
    assert error.value.message == ("input size does not match signature: 2!=2 len({c,image}) != "
                                   "len({b,image}). Sent extra: {c}. Missing but required: {b}.")
    protos = {"image": protos["image"], "b": tf.make_tensor_proto(np.array([2.0], np.float32))}
    assert codec.inputs_from_protos(protos, two)["b"].tolist() == [2.0]


def test_responses_follow_the_request_format():
    outputs = {"p": np.array([[0.5, 0.5]]), "id": np.array([1])}
    assert codec.response_body(outputs, "row") == {"predictions": [{"p": [0.5, 0.5], "id": 1}]}
    assert codec.response_body({"p": outputs["p"]}, "row") == {"predictions": [[0.5, 0.5]]}
    assert codec.response_body(outputs, "columnar") == {"outputs": {"p": [[0.5, 0.5]], "id": [1]}}
    encoded = codec.response_body({"img_bytes": np.array([b"hi"], dtype=object)}, "columnar")
    assert encoded == {"outputs": [{"b64": "aGk="}]}


def test_json_errors_name_the_problem():
    with pytest.raises(InvalidArgument, match="JSON Parse error"):
        codec.parse_json(b"{nope")
    with pytest.raises(InvalidArgument, match="JSON Parse error: The document is empty"):
        codec.parse_json(b"")
    with pytest.raises(InvalidArgument, match=r"JSON Value: \[1\] Is not object"):
        codec.parse_json(b"[1]")
    assert np.isnan(codec.parse_json(b'{"x": NaN}')["x"])           # parsed, as TF Serving does
    with pytest.raises(InvalidArgument, match="NaN"):
        codec.to_tensor([[float("nan"), 1.0]], IMAGE)


def test_threads_do_not_hang_on_stop():
    batcher = batching.Batcher(batching.BatchingParameters(num_batch_threads=2))
    batcher.stop()
    assert not any(t.is_alive() for t in threading.enumerate() if t.name.startswith("batcher-")
                   and t in batcher._threads)


def test_garbage_collection_pauses_are_measured():
    import gc

    from helpers.serving import metrics

    server_metrics = metrics.ServerMetrics()
    try:
        gc.collect()
        server_metrics.observe_batch(3)
        samples = metrics.parse_samples(server_metrics.exposition()[0].decode())
        assert samples[("python_gc_pause_seconds_count", (("generation", "2"),))] >= 1
        assert samples[("serving_batch_size_sum", ())] == 3
    finally:
        server_metrics.close()
    assert server_metrics._on_gc not in gc.callbacks


def test_metrics_change_reports_what_moved_during_a_block():
    import http.server

    from helpers.serving import metrics

    counts = iter([1.0, 5.0])

    class Exposition(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = (f"# TYPE requests counter\nrequests_total{{code=\"200\"}} {next(counts)}\n"
                    f"# TYPE gauge_a gauge\ngauge_a 7\n").encode()
            self.send_response(200 if self.path == "/monitoring/prometheus/metrics" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Exposition)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with metrics.MetricsChange(f"http://127.0.0.1:{server.server_address[1]}") as change:
            pass
    finally:
        server.shutdown()
        server.server_close()
    assert change("requests_total", code="200") == 4.0
    assert change("gauge_a") == 0.0 and change("not_there") == 0.0


def test_wait_for_and_the_tf_serving_lookup(monkeypatch):
    from helpers.serving import launcher

    flips = iter([False, False, True])
    assert launcher.wait_for(lambda: next(flips), timeout_s=5) < 1
    with pytest.raises(TimeoutError, match="the moon"):
        launcher.wait_for(lambda: False, timeout_s=0.2, what="the moon")
    monkeypatch.setattr(launcher.shutil, "which", lambda name: None)
    assert launcher.tf_serving_binary(install=False) is None


def test_a_full_queue_with_mixed_keys_never_deadlocks_the_worker():
    """Producers keep a tiny queue full with requests of three keys, so the worker keeps meeting a
    request that does not fit its batch. It must never block: every future completes or is
    refused with Unavailable, and stop() returns."""
    batcher = batching.Batcher(batching.BatchingParameters(max_batch_size=2, max_enqueued_batches=1))
    signature = SlowDouble(delay_s=0)
    accepted, refused, lock = [], [0], threading.Lock()
    until = time.monotonic() + 1.0

    def producer(key):
        i = 0
        while time.monotonic() < until:
            i += 1
            value = np.full((1, 2), key * 1_000_000 + i, np.float32)
            try:
                future = batcher.submit((key, "s"), signature, {"image": value})
            except Unavailable as error:          # TF Serving's answer to a full batch queue
                refused[0] += error.message == batching.QUEUE_FULL
                continue
            with lock:
                accepted.append((value, future))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)          # switch threads as often as possible: hit every window
    try:
        producers = [threading.Thread(target=producer, args=(k % 3,)) for k in range(6)]
        for thread in producers:
            thread.start()
        for thread in producers:
            thread.join(10)
    finally:
        sys.setswitchinterval(interval)
    deadline = time.monotonic() + 10
    pending = []
    for value, future in accepted:
        try:
            np.testing.assert_array_equal(future.result(max(0.01, deadline - time.monotonic()))["double"],
                                          value * 2)
        except TimeoutError:
            pending.append(future)
    stopper = threading.Thread(target=batcher.stop, daemon=True)
    stopper.start()
    stopper.join(10)
    assert not pending, f"{len(pending)} of {len(accepted)} requests never completed: the worker is stuck"
    assert not stopper.is_alive(), "stop() blocked"
    assert refused[0] > 0 and len(accepted) > 20       # the queue was full, and requests were served


def test_stop_refuses_waiting_and_new_requests_with_unavailable():
    entered, release = threading.Event(), threading.Event()

    class Blocking(SlowDouble):
        def run(self, inputs):
            entered.set()
            release.wait(10)
            return super().run(inputs)

    batcher = batching.Batcher(batching.BatchingParameters(max_batch_size=1))
    signature = Blocking(delay_s=0)
    running = batcher.submit(("v", "s"), signature, {"image": np.ones((1, 2), np.float32)})
    assert entered.wait(10)                           # the worker now runs the first request
    waiting = batcher.submit(("v", "s"), signature, {"image": np.ones((1, 2), np.float32)})
    stopper = threading.Thread(target=batcher.stop)
    stopper.start()
    launcher.wait_for(lambda: batcher._stopping, 10, "stop() to begin")
    with pytest.raises(Unavailable, match="shutting down"):
        batcher.submit(("v", "s"), signature, {"image": np.ones((1, 2), np.float32)})
    release.set()
    stopper.join(10)
    assert running.result(5)["double"].tolist() == [[2.0, 2.0]]     # the batch in progress finishes
    with pytest.raises(Unavailable, match="shutting down"):
        waiting.result(5)


def test_validate_tensor_is_the_one_check_of_rest_and_grpc_inputs():
    image = TensorSpec("image", np.dtype("float32"), (None, 2, 2))
    good = np.zeros((3, 2, 2), np.float32)
    assert codec.validate_tensor(good, image) is good
    cases = {   # what gRPC would send, what REST would send, the message
        "empty": (np.zeros((0, 2, 2), np.float32), [], "Input 'image' is empty"),
        "shape": (np.zeros((1, 2), np.float32), [[1.0, 2.0]],
                  "Input 'image' has shape [1, 2]; the signature expects [-1, 2, 2] (-1: any size)"),
        "NaN": (np.full((1, 2, 2), np.nan, np.float32), [[[float("nan")] * 2] * 2],
                "Input 'image' contains NaN or Infinity"),
    }
    for name, (array, value, message) in cases.items():
        with pytest.raises(InvalidArgument) as direct:
            codec.validate_tensor(array, image)
        with pytest.raises(InvalidArgument) as from_json:
            codec.to_tensor(value, image)
        assert message in direct.value.message and direct.value.message == from_json.value.message, name
    with pytest.raises(InvalidArgument, match="has dtype float64; the signature expects float32"):
        codec.validate_tensor(good.astype(np.float64), image)
    with pytest.raises(InvalidArgument, match="dtype"):
        codec.validate_tensor(np.array([b"x"], dtype=object), TensorSpec("n", np.dtype("int64"), (None,)))
    text = TensorSpec("text", np.dtype("object"), (None,))
    assert codec.validate_tensor(np.array([b"hi"], dtype=object), text).tolist() == [b"hi"]
    with pytest.raises(InvalidArgument, match="Input 'image' is empty"):     # a columnar request too
        codec.request_inputs({"inputs": []}, signature_with(image))
    with pytest.raises(InvalidArgument, match="No values in 'instances' array"):   # TF Serving's message
        codec.request_inputs({"instances": []}, signature_with(image))


def test_an_internal_error_is_logged_with_a_request_id_and_not_told(caplog):
    try:
        raise RuntimeError("secret path /srv/models/key.pem")
    except RuntimeError as error:
        with caplog.at_level(logging.ERROR, logger="helpers.serving"):
            message = errors.report_internal_error(error, "POST /v1/models/m:predict")
    request_id = message.removeprefix("Internal error (request id ").removesuffix(")")
    assert len(request_id) == 32 and "secret" not in message
    record, = caplog.records
    assert request_id in record.getMessage() and "POST /v1/models/m:predict" in record.getMessage()
    assert "secret path" in caplog.text and "Traceback" in caplog.text
    other = errors.report_internal_error(RuntimeError("again"), "gRPC Predict")
    assert other != message                          # a new id for every error


def test_read_token_refuses_an_empty_file_and_bearer_ok_compares(tmp_path):
    (tmp_path / "token").write_text("  abc123\n")
    assert auth.read_token(tmp_path / "token") == "abc123"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="no token"):
        auth.read_token(tmp_path / "empty")
    assert auth.bearer_ok("Bearer abc123", "abc123")
    assert not any(auth.bearer_ok(value, "abc123") for value in (None, "", "abc123", "Bearer abc12",
                                                                  "bearer abc123", "Bearer abc1234"))


def test_the_tf_serving_apt_source_is_https_and_signed_by_a_keyring():
    text = launcher.TF_SERVING_APT
    assert "http://" not in text and "apt-key" not in text
    assert "https://storage.googleapis.com/tensorflow-serving-apt" in text
    assert "signed-by=$KEYRING" in text and "KEYRING=/usr/share/keyrings/tensorflow-serving.gpg" in text
    assert "gpg --batch --yes --dearmor -o $KEYRING" in text and "set -euo pipefail" in text


def test_a_failed_export_leaves_no_staging_folder(tmp_path, monkeypatch):
    import keras
    import tensorflow as tf

    from helpers.serving import export

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])

    def failing_save(module, path, signatures=None):
        os.makedirs(os.path.join(path, "variables"))      # as a save that fails half-way
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        export.export_classifier(model, tmp_path, 1)
    assert list(tmp_path.iterdir()) == []


def test_class_probabilities_accepts_only_rows_of_probabilities():
    from helpers.serving import metrics

    good = np.array([[0.1, 0.9], [0.5, 0.5]], np.float32)
    assert metrics.class_probabilities(good) is not None
    for bad in (np.array([[0.2, 0.2]]),                # rows do not sum to 1 (logits, scores)
                np.array([[1.5, -0.5]]),               # negative
                np.array([0.1, 0.9]),                  # one row, 1-D
                np.array([[1.0]]),                     # one class
                np.array([[1, 0]]),                    # integers
                np.array([[np.nan, 1.0]]),
                np.zeros((0, 3), np.float32)):
        assert metrics.class_probabilities(bad) is None, bad


def test_observe_outputs_counts_predicted_classes_and_top_probabilities():
    from helpers.serving import metrics

    server_metrics = metrics.ServerMetrics()
    try:
        outputs = {"probabilities": np.array([[0.1, 0.9, 0.0], [0.7, 0.2, 0.1], [0.05, 0.9, 0.05]],
                                             np.float32),
                   "logits": np.array([[3.0, -1.0, 2.0]] * 3, np.float32)}   # not probabilities
        server_metrics.observe_outputs("clf", "2", outputs)
        samples = metrics.parse_samples(server_metrics.exposition()[0].decode())
    finally:
        server_metrics.close()
    version = (("model", "clf"), ("version", "2"))

    def count(label):
        return samples.get(("serving_predicted_class_total", tuple(sorted(version + (("class", label),)))))

    assert (count("0"), count("1"), count("2")) == (1.0, 2.0, None)
    assert samples[("serving_prediction_confidence_count", version)] == 3
    assert samples[("serving_prediction_confidence_sum", version)] == pytest.approx(2.5, abs=1e-6)
    assert samples[("serving_prediction_confidence_bucket", tuple(sorted(version + (("le", "0.8"),))))] == 1
