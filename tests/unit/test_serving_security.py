"""The server's security: the bearer token on REST and gRPC, the open metrics route, an empty
token file, and internal errors (logged with a request id, never told to the client)."""

import re

import grpc
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

from helpers.serving import launcher, metrics

TIMEOUT = 30
TOKEN = "s3cret-token"
SECRET = "secret detail: pixel above one"


class Fragile(tf.Module):
    """A model that fails inside TensorFlow when a pixel is above 1 (as a real bug would)."""

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name="image")])
    def serve(self, image):
        check = tf.debugging.assert_less_equal(tf.reduce_max(image), 1.0, message=SECRET)
        with tf.control_dependencies([check]):
            flat = tf.reshape(image, [-1, 784])
        return {"probabilities": tf.nn.softmax(flat[:, :10])}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("security") / "fragile"
    module = Fragile()
    tf.saved_model.save(module, str(path / "1"), signatures={"serving_default": module.serve})
    return path


@pytest.fixture(scope="module")
def server(base):
    with launcher.ModelServer("fragile", base, ["--enable_monitoring", "--enable_batching"],
                              token=TOKEN) as running:
        yield running


def images(value=0.5, n=2):
    return np.full((n, 28, 28, 1), value, np.float32)


def predict_request(value=0.5):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "fragile"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(images(value)))
    return request


def grpc_calls(channel):
    """One call of every gRPC method, each taking ``metadata``."""
    prediction = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    status = model_service_pb2_grpc.ModelServiceStub(channel)
    metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec={"name": "fragile"}, metadata_field=["signature_def"])
    status_request = get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "fragile"})
    return {"Predict": lambda md: prediction.Predict(predict_request(), timeout=TIMEOUT, metadata=md),
            "GetModelMetadata": lambda md: prediction.GetModelMetadata(metadata_request, timeout=TIMEOUT,
                                                                       metadata=md),
            "GetModelStatus": lambda md: status.GetModelStatus(status_request, timeout=TIMEOUT,
                                                               metadata=md)}


def test_rest_needs_the_bearer_token(server):
    url = f"{server.rest_url}/v1/models/fragile:predict"
    body = {"instances": images(n=1).tolist()}
    refused = requests.post(url, json=body, timeout=TIMEOUT)
    assert refused.status_code == 401 and "bearer token" in refused.json()["error"]
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    wrong = requests.post(url, json=body, headers={"Authorization": "Bearer guess"}, timeout=TIMEOUT)
    assert wrong.status_code == 401
    assert requests.post(url, json=body, headers=server.headers, timeout=TIMEOUT).status_code == 200
    status = requests.get(f"{server.rest_url}/v1/models/fragile", timeout=TIMEOUT)
    assert status.status_code == 401


def test_grpc_needs_the_bearer_token_on_every_method(server):
    assert server.grpc_metadata == (("authorization", f"Bearer {TOKEN}"),)
    with grpc.insecure_channel(server.grpc_target) as channel:
        for method, call in grpc_calls(channel).items():
            for metadata in [None, (("authorization", "Bearer guess"),), (("authorization", TOKEN),)]:
                with pytest.raises(grpc.RpcError) as error:
                    call(metadata)
                assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED, (method, metadata)
                assert "bearer token" in error.value.details()
            call(server.grpc_metadata)                   # the right token: answered


def test_metrics_stay_open_and_count_refused_grpc_calls(server):
    with metrics.MetricsChange(server.rest_url) as change:     # no token needed
        with grpc.insecure_channel(server.grpc_target) as channel:
            with pytest.raises(grpc.RpcError):
                grpc_calls(channel)["Predict"](None)
    assert change("serving_requests_total", api="grpc_predict", model="fragile", status="UNAUTHENTICATED",
                  version="") == 1


def request_id_of(message: str) -> str:
    match = re.fullmatch(r"Internal error \(request id ([0-9a-f]{32})\)", message)
    assert match, f"not a generic internal error: {message!r}"
    return match.group(1)


def assert_logged_with_traceback(server, request_id):
    log = server.log_text()
    assert f"internal error (request id {request_id})" in log
    after = log[log.index(request_id):]
    assert "Traceback" in after and SECRET in after


def test_an_internal_error_over_rest_is_logged_and_answered_with_a_request_id_only(server):
    reply = requests.post(f"{server.rest_url}/v1/models/fragile:predict", headers=server.headers,
                          json={"instances": images(5.0).tolist()}, timeout=TIMEOUT)
    assert reply.status_code == 500
    assert list(reply.json()) == ["error"] and SECRET not in reply.text
    assert_logged_with_traceback(server, request_id_of(reply.json()["error"]))
    good = requests.post(f"{server.rest_url}/v1/models/fragile:predict", headers=server.headers,
                         json={"instances": images().tolist()}, timeout=TIMEOUT)
    assert good.status_code == 200


def test_an_internal_error_over_grpc_is_logged_and_answered_with_a_request_id_only(server):
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(predict_request(5.0), timeout=TIMEOUT, metadata=server.grpc_metadata)
        assert error.value.code() == grpc.StatusCode.INTERNAL
        assert SECRET not in error.value.details()
        assert_logged_with_traceback(server, request_id_of(error.value.details()))
        assert stub.Predict(predict_request(), timeout=TIMEOUT, metadata=server.grpc_metadata).outputs


def test_an_empty_token_file_is_refused_at_start(base, tmp_path):
    (tmp_path / "token").write_text("\n")
    with pytest.raises(RuntimeError, match="holds no token"):
        launcher.ModelServer("fragile", base, [f"--auth_token_file={tmp_path / 'token'}"],
                             start_timeout_s=TIMEOUT).start()
