"""Where this server deliberately differs from TF Serving (notebook 11 lists every difference):
NaN and Infinity refused, empty batches refused, a size limit (413 / RESOURCE_EXHAUSTED), one
validation message for REST and gRPC, :classify and :regress not implemented, JSON 404 outside
/v1/, a clean stop on SIGTERM, fail fast without a loadable version. Auth and internal errors:
test_serving_security.py. TF Serving's own behaviour: test_serving_contract.py."""

import json
import signal

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from helpers.serving import launcher

TIMEOUT = 30


@pytest.fixture(scope="module")
def base(tiny_served_model):
    return tiny_served_model


@pytest.fixture(scope="module")
def server(base):
    with launcher.ModelServer("clf", base, ["--max_request_bytes=200000"]) as running:
        yield running


def _image(value=0.0):
    return [[[value] for _ in range(28)] for _ in range(28)]


_NAN_IMAGE = _image()
_NAN_IMAGE[3][4][0] = float("nan")
SAME_MESSAGE = [   # name, the JSON body, the tensor sent over gRPC, part of the message
    ("empty batch", {"inputs": []}, np.zeros((0, 28, 28, 1), np.float32), "is empty"),
    ("wrong shape", {"instances": [[1.0, 2.0]]}, np.array([[1.0, 2.0]], np.float32),
     "has shape [1, 2]; the signature expects [-1, 28, 28, 1]"),
    ("NaN", json.dumps({"instances": [_NAN_IMAGE]}), np.array([_NAN_IMAGE], np.float32), "NaN or Infinity"),
]


@pytest.mark.parametrize("case", SAME_MESSAGE, ids=[case[0] for case in SAME_MESSAGE])
def test_rest_and_grpc_refuse_the_same_bad_input_with_the_same_message(server, case):
    """TF Serving runs an empty batch, passes NaN on and lets the model report a wrong shape."""
    _, body, tensor, message = case
    data = body if isinstance(body, str) else json.dumps(body)
    reply = requests.post(f"{server.rest_url}/v1/models/clf:predict", data=data, timeout=TIMEOUT)
    assert reply.status_code == 400 and message in reply.json()["error"], reply.text
    request = predict_pb2.PredictRequest(model_spec={"name": "clf"},
                                         inputs={"image": tf.make_tensor_proto(tensor)})
    with grpc.insecure_channel(server.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as error:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == reply.json()["error"]


def test_a_request_above_the_size_limit_is_refused_on_both_apis(server):
    """TF Serving has no REST body limit and accepts gRPC messages up to 2 GB."""
    huge = b'{"instances": [' + b"0," * 200_000 + b"0]}"
    reply = requests.post(f"{server.rest_url}/v1/models/clf:predict", data=huge, timeout=TIMEOUT)
    assert reply.status_code == 413 and "exceeds the limit of 200,000 bytes" in reply.json()["error"]
    request = predict_pb2.PredictRequest(model_spec={"name": "clf"}, inputs={
        "image": tf.make_tensor_proto(np.zeros((100, 28, 28, 1), np.float32))})   # 313,600 bytes
    with grpc.insecure_channel(server.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as error:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_classify_and_regress_are_not_implemented_and_other_paths_are_json_404s(server):
    classify = requests.post(f"{server.rest_url}/v1/models/clf:classify", data=b"{}", timeout=TIMEOUT)
    assert classify.status_code == 501 and ":predict only" in classify.json()["error"]
    elsewhere = requests.get(f"{server.rest_url}/v2/models/clf", timeout=TIMEOUT)
    assert elsewhere.status_code == 404 and "error" in elsewhere.json()


def test_sigterm_stops_cleanly(base):
    running = launcher.ModelServer("clf", base).start()
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(TIMEOUT) == 0
    assert running.stop() == 0
    assert "stopped cleanly" in running.log_text()        # kept after stop() removed the log file


def test_a_base_path_without_versions_fails_fast(tmp_path):
    with pytest.raises(RuntimeError, match="no loadable version"):
        launcher.ModelServer("clf", tmp_path, start_timeout_s=TIMEOUT).start()
