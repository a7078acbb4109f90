"""Contract tests of the TF Serving-compatible server: REST and gRPC, errors, batching,
hot reload and shutdown. Servers run as subprocesses on loopback ports, bounded in time.
Authentication and internal errors: test_serving_security.py; the launcher: test_serving_launcher.py."""

import json
import shutil
import signal
import threading

import grpc
import keras
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from helpers.serving import export, launcher, metrics

TIMEOUT = 30


def tiny_classifier(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(10, activation="softmax")])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    base = tmp_path_factory.mktemp("serving") / "classifier"
    classifiers = {version: tiny_classifier(version) for version in (1, 2, 3)}
    for version in (1, 2):
        export.export_classifier(classifiers[version], base, version)
    spare = tmp_path_factory.mktemp("spare")
    export.export_classifier(classifiers[3], spare, 3)
    return base, spare / "3", classifiers


@pytest.fixture(scope="module")
def server(models):
    base, _, _ = models
    with launcher.ModelServer("clf", base, ["--enable_batching", "--enable_monitoring",
                                            "--version_labels=stable=1",
                                            "--file_system_poll_wait_seconds=0.2",
                                            "--max_request_bytes=200000"]) as running:
        yield running


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)


def post(server, path, body, **kwargs):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(server.rest_url + path, data=data, timeout=TIMEOUT, **kwargs)


def expected(classifiers, version, x):
    return classifiers[version].predict(x, verbose=0)


def test_status_lists_versions_as_strings(server):
    reply = requests.get(f"{server.rest_url}/v1/models/clf", timeout=TIMEOUT)
    assert reply.status_code == 200
    versions = {row["version"]: row for row in reply.json()["model_version_status"]}
    assert set(versions) == {"1", "2"}
    assert versions["2"]["state"] == "AVAILABLE" and versions["2"]["status"]["error_code"] == "OK"
    one = requests.get(f"{server.rest_url}/v1/models/clf/versions/1", timeout=TIMEOUT).json()
    assert [row["version"] for row in one["model_version_status"]] == ["1"]


def test_predict_row_format_uses_latest_and_matches_the_model(server, models, images):
    _, _, classifiers = models
    reply = post(server, "/v1/models/clf:predict", {"instances": images.tolist()})
    assert reply.status_code == 200, reply.text
    predictions = reply.json()["predictions"]
    assert len(predictions) == 8 and set(predictions[0]) == {"probabilities", "class_id"}
    probabilities = np.array([row["probabilities"] for row in predictions])
    np.testing.assert_allclose(probabilities, expected(classifiers, 2, images), atol=1e-5)
    assert [row["class_id"] for row in predictions] == probabilities.argmax(1).tolist()


def test_predict_columnar_version_and_label(server, models, images):
    _, _, classifiers = models
    reply = post(server, "/v1/models/clf/versions/1:predict",
                 {"signature_name": "serving_default", "inputs": {"image": images[:3].tolist()}})
    assert reply.status_code == 200, reply.text
    outputs = reply.json()["outputs"]
    np.testing.assert_allclose(outputs["probabilities"], expected(classifiers, 1, images[:3]), atol=1e-5)
    labelled = post(server, "/v1/models/clf/labels/stable:predict", {"inputs": images[:3].tolist()})
    np.testing.assert_allclose(labelled.json()["outputs"]["probabilities"], outputs["probabilities"])


def test_metadata_has_the_signature_def(server):
    reply = requests.get(f"{server.rest_url}/v1/models/clf/versions/2/metadata", timeout=TIMEOUT)
    assert reply.status_code == 200
    body = reply.json()
    assert body["model_spec"] == {"name": "clf", "signature_name": "", "version": "2"}
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["image"]["dtype"] == "DT_FLOAT"
    assert set(signature["outputs"]) == {"probabilities", "class_id"}
    assert signature["methodName"] == "tensorflow/serving/predict"


def _image(value=0.0):
    return [[[value] for _ in range(28)] for _ in range(28)]


_NAN_IMAGE = _image()
_NAN_IMAGE[3][4][0] = float("nan")
BAD_REQUESTS = [
    ("malformed JSON", "/v1/models/clf:predict", b'{"instances": [1, 2', 400, "JSON Parse error"),
    ("not an object", "/v1/models/clf:predict", b"[1, 2]", 400, "must be an object"),
    ("wrong shape", "/v1/models/clf:predict", {"instances": [[1.0, 2.0]]}, 400, "shape"),
    ("wrong dtype", "/v1/models/clf:predict", {"instances": [_image("a")]}, 400, "convert"),
    ("ragged", "/v1/models/clf:predict", {"instances": [[[0.0]] * 28, [[0.0]] * 27]}, 400, "convert"),
    ("NaN", "/v1/models/clf:predict", json.dumps({"instances": [_NAN_IMAGE]}), 400, "NaN"),
    ("empty", "/v1/models/clf:predict", {"instances": []}, 400, "empty"),
    ("both keys", "/v1/models/clf:predict", {"instances": [], "inputs": []}, 400, "not both"),
    ("neither key", "/v1/models/clf:predict", {"signature_name": "serving_default"}, 400, "Missing"),
    ("unknown signature", "/v1/models/clf:predict",
     {"signature_name": "nope", "instances": [_image()]}, 400, "not found in signature"),
    ("unknown input name", "/v1/models/clf:predict", {"inputs": {"img": []}}, 400, "unknown"),
    ("unknown model", "/v1/models/nope:predict", {"instances": [1]}, 404, "Servable not found"),
    ("unknown version", "/v1/models/clf/versions/9:predict", {"instances": [1]}, 404, "Specific"),
    ("unknown label", "/v1/models/clf/labels/beta:predict", {"instances": [1]}, 404, "label"),
    ("huge payload", "/v1/models/clf:predict", b'{"instances": [' + b"0," * 200_000 + b"0]}", 413,
     "exceeds"),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS])
def test_bad_input_gets_a_clear_error_and_the_server_survives(server, images, case):
    _, path, body, status, message = case
    reply = post(server, path, body)
    assert reply.status_code == status, reply.text
    assert message in reply.json()["error"]
    good = post(server, "/v1/models/clf:predict", {"instances": images[:1].tolist()})
    assert good.status_code == 200


def test_other_http_errors_are_json(server):
    wrong_method = requests.post(f"{server.rest_url}/v1/models/clf", timeout=TIMEOUT)
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
    unknown = requests.get(f"{server.rest_url}/v2/whatever", timeout=TIMEOUT)
    assert unknown.status_code == 404 and "error" in unknown.json()
    get_on_predict = requests.get(f"{server.rest_url}/v1/models/clf/versions/2:predict", timeout=TIMEOUT)
    assert get_on_predict.status_code == 405 and "POST" in get_on_predict.json()["error"]
    missing_version = requests.get(f"{server.rest_url}/v1/models/clf/versions/7", timeout=TIMEOUT)
    assert missing_version.status_code == 404 and "error" in missing_version.json()


@pytest.fixture(scope="module")
def plain_server(models):
    """The same model without --enable_batching: one model call per request."""
    base, _, _ = models
    with launcher.ModelServer("clf", base, ["--enable_monitoring", "--port=0"]) as running:
        yield running


@pytest.mark.parametrize("batching", ["on", "off"])
def test_concurrent_clients_are_answered_correctly_and_batched_only_with_batching(
        request, models, images, batching):
    """24 clients x 5 single-image requests. Only the model calls made meanwhile are counted (the
    module's server also served the other tests): with batching some calls serve several rows,
    without it every call serves exactly one."""
    _, _, classifiers = models
    running = request.getfixturevalue("server" if batching == "on" else "plain_server")
    reference = expected(classifiers, 2, images)
    failures, results = [], {}

    def client(i):
        try:
            for j in range(5):
                row = (i + j) % len(images)
                reply = post(running, "/v1/models/clf:predict", {"instances": images[row:row + 1].tolist()})
                results[(i, j)] = (row, reply.status_code, reply.json())
        except Exception as error:  # noqa: BLE001
            failures.append(error)

    with metrics.MetricsChange(running.rest_url) as change:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
    assert not failures and len(results) == 120
    for row, status, body in results.values():
        assert status == 200
        np.testing.assert_allclose(body["predictions"][0]["probabilities"], reference[row], atol=1e-5)
    calls, rows = change("serving_batch_size_count"), change("serving_batch_size_sum")
    assert rows == 120, "every request of the phase reached the model, and nothing else did"
    assert change("serving_requests_total", api="rest", model="clf", status="200", version="2") == 120
    if batching == "on":
        assert calls < rows, f"{calls:.0f} model calls for {rows:.0f} rows: nothing was batched"
    else:
        assert calls == rows, f"{calls:.0f} model calls for {rows:.0f} rows without batching"


VALIDATION_CASES = [   # name, the JSON body, the tensor sent over gRPC
    ("empty batch", {"instances": []}, np.zeros((0, 28, 28, 1), np.float32)),
    ("wrong shape", {"instances": [[1.0, 2.0]]}, np.array([[1.0, 2.0]], np.float32)),
    ("NaN", json.dumps({"instances": [_NAN_IMAGE]}), np.array([_NAN_IMAGE], np.float32)),
]


@pytest.mark.parametrize("case", VALIDATION_CASES, ids=[case[0] for case in VALIDATION_CASES])
def test_rest_and_grpc_refuse_the_same_bad_input_with_the_same_message(server, case):
    _, body, tensor = case
    reply = post(server, "/v1/models/clf:predict", body)
    assert reply.status_code == 400, reply.text
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "clf"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(tensor))
    with grpc.insecure_channel(server.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as error:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == reply.json()["error"]


def test_grpc_predict_metadata_status_and_errors(server, models, images):
    _, _, classifiers = models
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "clf"
        request.model_spec.signature_name = "serving_default"
        request.inputs["image"].CopyFrom(tf.make_tensor_proto(images[:4]))
        response = stub.Predict(request, timeout=TIMEOUT)
        assert response.model_spec.version.value == 2
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]),
                                   expected(classifiers, 2, images[:4]), atol=1e-5)
        request.model_spec.version.value = 1
        assert stub.Predict(request, timeout=TIMEOUT).model_spec.version.value == 1

        metadata_request = get_model_metadata_pb2.GetModelMetadataRequest()
        metadata_request.model_spec.name = "clf"
        metadata_request.metadata_field.append("signature_def")
        metadata = stub.GetModelMetadata(metadata_request, timeout=TIMEOUT)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        metadata.metadata["signature_def"].Unpack(signature_map)
        assert "image" in signature_map.signature_def["serving_default"].inputs

        status_stub = model_service_pb2_grpc.ModelServiceStub(channel)
        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = "clf"
        status = status_stub.GetModelStatus(status_request, timeout=TIMEOUT)
        assert sorted(s.version for s in status.model_version_status) == [1, 2]

        bad = predict_pb2.PredictRequest()
        bad.model_spec.name = "nope"
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(bad, timeout=TIMEOUT)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        bad.model_spec.name = "clf"
        bad.inputs["image"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 5), np.float32)))
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(bad, timeout=TIMEOUT)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "shape" in error.value.details()
        assert stub.Predict(request, timeout=TIMEOUT).outputs["probabilities"].dtype == tf.float32


def test_hot_reload_and_rollback(server, models, images):
    base, spare_version, classifiers = models
    shutil.copytree(spare_version, base / ".incoming-3")
    (base / ".incoming-3").rename(base / "3")

    def latest_probabilities():
        reply = post(server, "/v1/models/clf:predict", {"instances": images[:2].tolist()})
        assert reply.status_code == 200
        return np.array([row["probabilities"] for row in reply.json()["predictions"]])

    def versions():
        rows = requests.get(f"{server.rest_url}/v1/models/clf", timeout=TIMEOUT).json()
        return {row["version"] for row in rows["model_version_status"]}

    launcher.wait_for(lambda: "3" in versions(), TIMEOUT, "version 3 to load")
    np.testing.assert_allclose(latest_probabilities(), expected(classifiers, 3, images[:2]), atol=1e-5)
    shutil.rmtree(base / "3")                              # roll back
    launcher.wait_for(lambda: versions() == {"1", "2"}, TIMEOUT, "version 3 to unload")
    np.testing.assert_allclose(latest_probabilities(), expected(classifiers, 2, images[:2]), atol=1e-5)


def test_sigterm_stops_cleanly(models):
    base, _, _ = models
    running = launcher.ModelServer("clf", base).start()
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(TIMEOUT) == 0
    assert running.stop() == 0
    assert "stopped cleanly" in running.log_text()        # kept after stop() removed the log file


def test_a_base_path_without_versions_fails_fast(tmp_path):
    with pytest.raises(RuntimeError, match="no loadable version"):
        launcher.ModelServer("clf", tmp_path, start_timeout_s=TIMEOUT).start()
