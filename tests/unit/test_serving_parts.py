import threading
import time

import numpy as np
import pytest

from helpers.serving import batching, codec
from helpers.serving.errors import InvalidArgument
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
    with pytest.raises(InvalidArgument, match="max_batch_size"):
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
    with pytest.raises(InvalidArgument, match="missing"):
        codec.request_inputs({"instances": [{"a": 1}]}, two)
    with pytest.raises(InvalidArgument, match="base64"):
        codec.request_inputs({"inputs": {"a": [1], "tag": [{"b64": "%%"}]}}, two)


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
