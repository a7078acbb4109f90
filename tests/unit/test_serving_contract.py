"""Contract tests: the server behaves as TensorFlow Serving does.

Every expectation here is TF Serving's documented or tested behaviour; the comment above each
test names the file of tensorflow/serving (or tensorflow/tensorflow) it comes from. Where this
server deliberately differs (NaN refused, 413, 401, :classify), the test is in
test_serving_extensions.py or test_serving_security.py, never here. Servers run as subprocesses
on loopback ports, bounded in time.
"""

import json
import shutil
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
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from helpers.serving import config, export, launcher, metrics, tls, warmup

TIMEOUT = 30
OK = {"error_code": "OK", "error_message": ""}


def tiny_classifier(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(10, activation="softmax")])


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory, images):
    """Versions 1 and 2 of "clf" (2 with warm-up records), and a spare version 3."""
    root = tmp_path_factory.mktemp("serving")
    classifiers = {version: tiny_classifier(version) for version in (1, 2, 3)}
    export.export_classifier(classifiers[1], root / "clf", 1)
    export.export_classifier(classifiers[2], root / "clf", 2, warmup_images=images, warmup_batch_sizes=(1, 4))
    export.export_classifier(classifiers[3], root / "spare", 3)
    return root, classifiers


@pytest.fixture(scope="module")
def server(models):
    root, _ = models
    with launcher.ModelServer("clf", root / "clf", ["--enable_batching", "--enable_monitoring",
                                                    "--file_system_poll_wait_seconds=0.2"]) as running:
        yield running


def post(server, path, body, **kwargs):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(server.rest_url + path, data=data, timeout=TIMEOUT, **kwargs)


def get(server, path):
    return requests.get(server.rest_url + path, timeout=TIMEOUT)


def expected(classifiers, version, x):
    return classifiers[version].predict(x, verbose=0)


def probabilities(reply):
    assert reply.status_code == 200, reply.text
    return np.array([row["probabilities"] for row in reply.json()["predictions"]])


def status(server, model="clf"):
    rows = get(server, f"/v1/models/{model}").json()["model_version_status"]
    return {row["version"]: row["state"] for row in rows}


def loaded(server, model):
    return sorted(v for v, s in status(server, model).items() if s == "AVAILABLE")


# model_servers/http_rest_api_handler_test.cc (GetStatus), tensorflow_model_server_test.py
# (testGetStatusREST); only the latest version is loaded by default: model_servers/server.cc
# (BuildSingleModelConfig sets no policy) and config/file_system_storage_path_source.proto
# ("Latest ... This is the default policy, with the default number of versions as 1").
def test_only_the_latest_version_is_loaded_by_default_and_the_status_is_tf_servings_json(server):
    reply = get(server, "/v1/models/clf")
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    assert reply.json() == {"model_version_status": [{"version": "2", "state": "AVAILABLE", "status": OK}]}
    assert get(server, "/v1/models/clf/versions/2").json()["model_version_status"][0]["version"] == "2"


# model_servers/get_model_status_impl.cc: NotFound "Could not find version ..." / "... any versions".
def test_status_of_a_version_or_model_never_loaded_is_not_found(server):
    missing_version = get(server, "/v1/models/clf/versions/1")
    assert missing_version.status_code == 404
    assert missing_version.json() == {"error": "Could not find version 1 of model clf"}
    missing_model = get(server, "/v1/models/nope")
    assert missing_model.status_code == 404
    assert "Could not find any versions of model nope" in missing_model.text


def _keys(value):
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    return {k for v in value for k in _keys(v)} if isinstance(value, list) else set()


# model_servers/http_rest_api_util.cc (ToJsonString: preserve_proto_field_names,
# always_print_fields_with_no_presence); servables/tensorflow/testdata/half_plus_two_model_metadata.json;
# servables/tensorflow/get_model_metadata_impl.cc (every SignatureDef of the MetaGraph).
def test_metadata_is_printed_with_the_proto_field_names(server):
    body = get(server, "/v1/models/clf/metadata").json()
    assert body["model_spec"] == {"name": "clf", "signature_name": "", "version": "2"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "__saved_model_init_op"} <= set(signatures)
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    image = default["inputs"]["image"]
    assert image["dtype"] == "DT_FLOAT" and image["tensor_shape"]["unknown_rank"] is False
    assert image["tensor_shape"]["dim"] == [{"size": size, "name": ""} for size in ("-1", "28", "28", "1")]
    assert set(default["outputs"]) == {"probabilities", "class_id"}
    camel_case = {key for key in _keys(body) if any(c.isupper() for c in key)}
    assert not camel_case, f"camelCase keys (protobuf's default printer): {camel_case}"
    assert get(server, "/v1/models/clf/versions/2/metadata").json() == body


# model_servers/http_rest_api_handler_test.cc (Predict); g3doc/api_rest.md (row and columnar formats).
def test_predict_row_and_columnar_formats(server, models, images):
    _, classifiers = models
    reply = post(server, "/v1/models/clf:predict", {"instances": images.tolist()})
    assert reply.headers["content-type"] == "application/json"
    predictions = reply.json()["predictions"]
    assert len(predictions) == 8 and set(predictions[0]) == {"probabilities", "class_id"}
    np.testing.assert_allclose(probabilities(reply), expected(classifiers, 2, images), atol=1e-5)
    assert [row["class_id"] for row in predictions] == probabilities(reply).argmax(1).tolist()
    columnar = post(server, "/v1/models/clf/versions/2:predict",
                    {"signature_name": "serving_default", "inputs": {"image": images[:3].tolist()}})
    assert columnar.status_code == 200 and set(columnar.json()) == {"outputs"}
    np.testing.assert_allclose(columnar.json()["outputs"]["probabilities"],
                               expected(classifiers, 2, images[:3]), atol=1e-5)


MALFORMED = [   # model_servers/http_rest_api_handler_test.cc (UnsupportedApiCalls)
    ("GET", "/v1/models", "Missing model name in request."),
    ("GET", "/v1/foo", "Malformed request: GET /v1/foo"),
    ("POST", "/v1/foo", "Malformed request"),
    ("GET", "/v1/models/debug/model_name", "Malformed request"),
    ("POST", "/v1/models", "Malformed request"),
    ("GET", "/v1/models/clf:predict", "Malformed request: GET /v1/models/clf:predict"),
    ("GET", "/v1/models/clf/version/50:predict", "Malformed request"),
    ("POST", "/v1/models/clf/versions/HELLO:predict", "Malformed request"),
    ("POST", f"/v1/models/clf/versions/{2**64 - 1}:predict", "Failed to convert version"),
    ("POST", "/v1/models/clf/metadata", "Malformed request"),
    ("POST", "/v1/models/clf/versions/50/labels/some_label:predict", "Malformed request"),
    ("POST", "/v1/models/clf", "Malformed request"),
    ("PUT", "/v1/models/clf", "Malformed request"),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[f"{m} {p}" for m, p, _ in MALFORMED])
def test_malformed_requests_are_400_with_tf_servings_message(server, images, case):
    method, path, message = case
    reply = requests.request(method, server.rest_url + path, data=b"{}", timeout=TIMEOUT)
    assert reply.status_code == 400, reply.text
    assert message in reply.json()["error"]
    assert post(server, "/v1/models/clf:predict", {"instances": images[:1].tolist()}).status_code == 200


def _image(value=0.0):
    return [[[value] for _ in range(28)] for _ in range(28)]


BAD_BODIES = [   # http_rest_api_handler_test.cc (PredictRequestErrors, PredictModelNameVersionErrors),
    # util/json_tensor.cc (FillPredictRequestFromJson), g3doc/api_rest.md (the example's 404)
    ("empty body", "/v1/models/clf:predict", b"", 400, "JSON Parse error: The document is empty"),
    ("malformed JSON", "/v1/models/clf:predict", b"instances = [1, 2]", 400, "JSON Parse error"),
    ("not an object", "/v1/models/clf:predict", b"[1, 2]", 400, "Is not object"),
    ("wrong type", "/v1/models/clf:predict", {"instances": ["x", "y"]}, 400, "not of expected type: float"),
    ("signature_name not a string", "/v1/models/clf:predict", {"signature_name": 100}, 400,
     "'signature_name' key must be a string value."),
    ("unknown signature", "/v1/models/clf:predict", {"signature_name": "nope", "instances": [_image()]}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ("both keys", "/v1/models/clf:predict", {"instances": [_image()], "inputs": [_image()]}, 400,
     "expecting only one of 'inputs' or 'instances' keys to exist"),
    ("neither key", "/v1/models/clf:predict", {"signature_name": "serving_default"}, 400,
     "Missing 'inputs' or 'instances' key"),
    ("instances not a list", "/v1/models/clf:predict", {"instances": 5}, 400,
     "Expecting 'instances' to be an list/array"),
    ("empty instances", "/v1/models/clf:predict", {"instances": []}, 400, "No values in 'instances' array"),
    ("missing named input", "/v1/models/clf:predict", {"inputs": {"img": [_image()]}}, 400,
     "Missing named input: image in 'inputs' object."),
    ("wrong shape", "/v1/models/clf:predict", {"instances": [[1.0, 2.0]]}, 400, ""),
    ("unknown label", "/v1/models/clf/labels/beta:predict", {"instances": [_image()]}, 400,
     "Unrecognized servable version label: beta"),
    ("unknown model", "/v1/models/nope:predict", {"instances": [1]}, 404,
     "Servable not found for request: Latest(nope)"),
    ("unknown version", "/v1/models/clf/versions/9:predict", {"instances": [1]}, 404,
     "Servable not found for request: Specific(clf, 9)"),
]


@pytest.mark.parametrize("case", BAD_BODIES, ids=[case[0] for case in BAD_BODIES])
def test_bad_requests_get_tf_servings_status_and_error_and_the_server_carries_on(server, images, case):
    _, path, body, status_code, message = case
    reply = post(server, path, body)
    assert reply.status_code == status_code, reply.text
    assert set(reply.json()) == {"error"} and message in reply.json()["error"]
    assert post(server, "/v1/models/clf:predict", {"instances": images[:1].tolist()}).status_code == 200


# model_servers/http_server.cc (ProcessRequest: OPTIONS is a CORS pre-flight).
def test_a_cors_preflight_needs_an_origin(server):
    with_origin = requests.options(f"{server.rest_url}/v1/models/clf:predict",
                                   headers={"Origin": "https://example.org"}, timeout=TIMEOUT)
    assert with_origin.status_code == 200
    without = requests.options(f"{server.rest_url}/v1/models/clf:predict", timeout=TIMEOUT)
    assert without.status_code == 400 and "Origin header is missing in CORS preflight" in without.text


def grpc_predict_request(x, model="clf", **spec):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, key, value)
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(x))
    return request


# model_servers/tensorflow_model_server_test.py (testGetModelStatus, testGetModelMetadata,
# testPredict...); apis/prediction_service.proto, apis/model_service.proto.
def test_grpc_predict_metadata_and_status(server, models, images):
    _, classifiers = models
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(grpc_predict_request(images[:4], signature_name="serving_default"),
                                timeout=TIMEOUT)
        assert (response.model_spec.name, response.model_spec.version.value) == ("clf", 2)
        assert response.model_spec.signature_name == "serving_default"
        assert response.outputs["probabilities"].dtype == tf.float32.as_datatype_enum
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]),
                                   expected(classifiers, 2, images[:4]), atol=1e-5)
        metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec={"name": "clf"}, metadata_field=["signature_def"])
        metadata = stub.GetModelMetadata(metadata_request, timeout=TIMEOUT)
        assert metadata.model_spec.name == "clf" and metadata.model_spec.version.value == 2
        assert list(metadata.metadata) == ["signature_def"]
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        metadata.metadata["signature_def"].Unpack(signature_map)
        assert "image" in signature_map.signature_def["serving_default"].inputs
        model_status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "clf"}), timeout=TIMEOUT)
        assert [(s.version, s.status.error_code) for s in model_status.model_version_status] == [(2, 0)]


GRPC_ERRORS = [   # servables/tensorflow/predict_util.cc, get_model_metadata_impl.cc, server_core.cc
    ("unknown model", "Predict", grpc_predict_request(np.zeros((1, 28, 28, 1), np.float32), model="nope"),
     grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)"),
    ("unknown version", "Predict", grpc_predict_request(np.zeros((1, 28, 28, 1), np.float32), version=9),
     grpc.StatusCode.NOT_FOUND, "Specific(clf, 9)"),
    ("unknown label", "Predict", grpc_predict_request(np.zeros((1, 28, 28, 1), np.float32),
                                                     version_label="beta"),
     grpc.StatusCode.INVALID_ARGUMENT, "Unrecognized servable version label: beta"),
    ("wrong input name", "Predict", predict_pb2.PredictRequest(
        model_spec={"name": "clf"},
        inputs={"img": tf.make_tensor_proto(np.zeros((1, 28, 28, 1), np.float32))}),
     grpc.StatusCode.INVALID_ARGUMENT, "input size does not match signature: 1!=1 len({img}) != "
                                       "len({image}). Sent extra: {img}. Missing but required: {image}."),
    ("unknown output", "Predict", predict_pb2.PredictRequest(
        model_spec={"name": "clf"}, output_filter=["logits"],
        inputs={"image": tf.make_tensor_proto(np.zeros((1, 28, 28, 1), np.float32))}),
     grpc.StatusCode.INVALID_ARGUMENT, "output tensor alias not found in signature: logits"),
    ("no metadata field", "GetModelMetadata", get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec={"name": "clf"}), grpc.StatusCode.INVALID_ARGUMENT,
     "GetModelMetadataRequest must specify at least one metadata_field"),
    ("unsupported metadata field", "GetModelMetadata", get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec={"name": "clf"}, metadata_field=["tags"]), grpc.StatusCode.INVALID_ARGUMENT,
     "Metadata field tags is not supported"),
]


@pytest.mark.parametrize("case", GRPC_ERRORS, ids=[case[0] for case in GRPC_ERRORS])
def test_grpc_errors_carry_tf_servings_code_and_message(server, case):
    _, method, request, code, message = case
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            getattr(stub, method)(request, timeout=TIMEOUT)
    assert error.value.code() == code and message in error.value.details()


# g3doc/saved_model_warmup.md and servables/tensorflow/saved_model_warmup_util.cc: the records in
# assets.extra/tf_serving_warmup_requests are replayed when the version loads (and logged so).
def test_warmup_records_are_replayed_when_a_version_loads(server):
    assert "warmup_requests. Number of warmup records read: 2." in server.log_text()


# servables/tensorflow/saved_model_warmup_util.cc: a warm-up file that is not a TFRecord fails
# the load ("Please verify your warmup data is in TFRecord format"); the policy is
# core/availability_preserving_policy.cc: the loaded version keeps serving.
def test_a_version_whose_warmup_fails_is_not_served_and_the_previous_one_stays(server, models, images):
    root, classifiers = models
    staging = root / "staging-5"
    shutil.copytree(root / "clf" / "2", staging)
    warmup.requests_path(staging).write_bytes(b"not a TFRecord")
    staging.rename(root / "clf" / "5")
    try:
        launcher.wait_for(lambda: status(server).get("5") == "END", TIMEOUT, "version 5's load to fail")
        row = get(server, "/v1/models/clf/versions/5").json()["model_version_status"][0]
        assert row["status"]["error_code"] != "OK"
        assert "Please verify your warmup data is in TFRecord format" in row["status"]["error_message"]
        assert status(server)["2"] == "AVAILABLE"
        np.testing.assert_allclose(probabilities(post(server, "/v1/models/clf:predict",
                                                      {"instances": images[:2].tolist()})),
                                   expected(classifiers, 2, images[:2]), atol=1e-5)
    finally:
        shutil.rmtree(root / "clf" / "5")


# The latest policy (config/file_system_storage_path_source.proto: "Serve the latest versions ...
# among those found on disk"), core/availability_preserving_policy.cc (load the new version, then
# unload the old one) and core/servable_state_monitor.cc (an unloaded version's state is END).
def test_a_new_version_replaces_the_latest_and_removing_it_rolls_back_without_failed_requests(
        server, models, images):
    root, classifiers = models
    body = json.dumps({"instances": images[:1].tolist()})
    failures, stop = [], threading.Event()

    def keep_predicting():
        with requests.Session() as session:
            while not stop.is_set():
                reply = session.post(f"{server.rest_url}/v1/models/clf:predict", data=body, timeout=TIMEOUT)
                if reply.status_code != 200:
                    failures.append(reply.text)

    background = threading.Thread(target=keep_predicting)
    background.start()
    try:
        shutil.copytree(root / "spare" / "3", root / "clf" / ".incoming-3")
        (root / "clf" / ".incoming-3").rename(root / "clf" / "3")
        launcher.wait_for(lambda: loaded(server, "clf") == ["3"], TIMEOUT, "3 to replace 2")
        assert status(server)["2"] == "END"
        latest = probabilities(post(server, "/v1/models/clf:predict", {"instances": images[:2].tolist()}))
        np.testing.assert_allclose(latest, expected(classifiers, 3, images[:2]), atol=1e-5)
        shutil.rmtree(root / "clf" / "3")                   # roll back: 2 is the latest again
        launcher.wait_for(lambda: loaded(server, "clf") == ["2"], TIMEOUT, "2 to return")
        assert status(server)["3"] == "END"
    finally:
        stop.set()
        background.join(TIMEOUT)
    assert not failures, failures[:3]
    np.testing.assert_allclose(probabilities(post(server, "/v1/models/clf:predict",
                                                  {"instances": images[:2].tolist()})),
                               expected(classifiers, 2, images[:2]), atol=1e-5)


# apis/model_service.proto (HandleReloadConfigRequest), g3doc/serving_config.md ("Reloading Model
# Server Configuration"), model_servers/model_service_impl.cc; a policy of all versions:
# config/file_system_storage_path_source.proto ("All").
def test_handle_reload_config_request_applies_a_new_config(server, models):
    root, _ = models

    def reload(policy):
        request = model_management_pb2.ReloadConfigRequest()
        request.config.CopyFrom(config.parse_model_server_config(config.model_config_text(
            [{"name": "clf", "base_path": root / "clf", "policy": policy}])))
        with grpc.insecure_channel(server.grpc_target) as channel:
            return model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
                request, timeout=TIMEOUT)

    try:
        assert reload("all").status.error_code == 0
        assert loaded(server, "clf") == ["1", "2"]
    finally:
        reload("latest")
    assert loaded(server, "clf") == ["2"]


@pytest.fixture(scope="module")
def config_server(models, tmp_path_factory):
    """A server reading a --model_config_file (polled every 0.2 s) with three models."""
    root, _ = models
    config_file = tmp_path_factory.mktemp("config") / "models.config"
    config_file.write_text(config.model_config_text([
        {"name": "pinned", "base_path": root / "clf", "policy": [1]},
        {"name": "both", "base_path": root / "clf", "policy": "all", "labels": {"stable": 1, "canary": 2}},
        {"name": "recent", "base_path": root / "clf", "policy": "latest:2"}]))
    flags = [f"--model_config_file={config_file}", "--model_config_file_poll_wait_seconds=0.2",
             "--allow_version_labels_for_unavailable_models"]
    with launcher.ModelServer("both", None, flags) as running:
        running.config_file = config_file
        yield running


# g3doc/serving_config.md (a model config file: several models, model_version_policy specific /
# all / latest, version_labels), tensorflow_model_server_test.py (testGoodModelConfig),
# --allow_version_labels_for_unavailable_models (model_servers/main.cc, server_core.cc).
def test_a_config_file_serves_several_models_each_with_its_policy_and_labels(config_server, models, images):
    _, classifiers = models
    assert loaded(config_server, "pinned") == ["1"]
    assert loaded(config_server, "both") == ["1", "2"]
    assert loaded(config_server, "recent") == ["1", "2"]
    for model, version in (("pinned", 1), ("both", 2), ("recent", 2)):      # the latest loaded one
        reply = post(config_server, f"/v1/models/{model}:predict", {"instances": images[:2].tolist()})
        np.testing.assert_allclose(probabilities(reply), expected(classifiers, version, images[:2]),
                                   atol=1e-5)
    for label, version in (("stable", 1), ("canary", 2)):
        reply = post(config_server, f"/v1/models/both/labels/{label}:predict",
                     {"instances": images[:2].tolist()})
        np.testing.assert_allclose(probabilities(reply), expected(classifiers, version, images[:2]),
                                   atol=1e-5)
        with grpc.insecure_channel(config_server.grpc_target) as channel:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                grpc_predict_request(images[:1], model="both", version_label=label), timeout=TIMEOUT)
        assert response.model_spec.version.value == version
    assert get(config_server, "/v1/models/both/labels/canary/metadata").json()["model_spec"]["version"] == "2"


# model_servers/server_core.cc (UpdateModelVersionLabelMap: "Request to assign label to version ...
# which is not currently available for inference"; moving an existing label needs an available
# version even with --allow_version_labels_for_unavailable_models) and server.cc
# (PollFilesystemAndReloadConfig logs the error and keeps serving the previous config).
def test_a_label_moved_to_a_version_not_loaded_is_refused_and_the_config_kept(config_server, models):
    root, _ = models
    before = config_server.config_file.read_text()
    config_server.config_file.write_text(config.model_config_text([
        {"name": "pinned", "base_path": root / "clf", "policy": "all"},
        {"name": "both", "base_path": root / "clf", "policy": "all", "labels": {"stable": 7, "canary": 2}},
        {"name": "recent", "base_path": root / "clf", "policy": "latest:2"}]))
    try:
        refusal = ("Request to assign label to version 7 of model both, which is not currently available "
                   "for inference")
        launcher.wait_for(lambda: refusal in config_server.log_text(), TIMEOUT, "the refusal")
        assert loaded(config_server, "pinned") == ["1"]                  # nothing of that config applied
    finally:
        config_server.config_file.write_text(before)


# tensorflow_model_server_test.py (testModelConfigReload): the polled config file is realised,
# and only it (g3doc/serving_config.md: "model A ... replaced with a file that contains only
# model B, the server will load model B and unload model A").
def test_the_polled_config_file_is_realised_and_only_it(config_server, models):
    root, _ = models
    before = config_server.config_file.read_text()
    config_server.config_file.write_text(config.model_config_text([
        {"name": "both", "base_path": root / "clf", "policy": [2], "labels": {"canary": 2}},
        {"name": "other", "base_path": root / "clf", "policy": [1]}]))
    try:
        launcher.wait_for(lambda: get(config_server, "/v1/models/other").status_code == 200, TIMEOUT, "other")
        launcher.wait_for(lambda: loaded(config_server, "both") == ["2"], TIMEOUT, "both to keep only 2")
        assert post(config_server, "/v1/models/pinned:predict", {"instances": [_image()]}).status_code == 404
        assert post(config_server, "/v1/models/both/labels/stable:predict",
                    {"instances": [_image()]}).status_code == 400            # the label is gone
    finally:
        config_server.config_file.write_text(before)
        launcher.wait_for(lambda: loaded(config_server, "both") == ["1", "2"], TIMEOUT, "the first config")


# tensorflow_model_server_test.py (testBadModelConfig: "Error parsing text-format
# tensorflow.serving.ModelServerConfig"); server_core.cc (labels at start-up need their versions
# available, unless --allow_version_labels_for_unavailable_models).
@pytest.mark.parametrize("case", ["malformed", "label without its version"])
def test_a_bad_config_file_stops_the_server_at_start(models, tmp_path, case):
    root, _ = models
    config_file = tmp_path / "models.config"
    if case == "malformed":
        config_file.write_text("model_config_list { config { nme: 'clf' } }")
        message = "Error parsing text-format tensorflow.serving.ModelServerConfig"
    else:
        config_file.write_text(config.model_config_text(
            [{"name": "clf", "base_path": root / "clf", "labels": {"stable": 2}}]))
        message = "Request to assign label to version 2 of model clf, which is not currently available"
    with pytest.raises(RuntimeError, match="exited with 2") as error:
        launcher.ModelServer("clf", None, [f"--model_config_file={config_file}"],
                             start_timeout_s=TIMEOUT).start()
    assert message in str(error.value)


@pytest.fixture(scope="module")
def plain_server(models):
    """The same model without --enable_batching: one model call per request."""
    root, _ = models
    with launcher.ModelServer("clf", root / "clf", ["--enable_monitoring", "--port=0"]) as running:
        yield running


# tensorflow_serving/batching/README.md: with --enable_batching, requests that arrive together
# are run as one batch; without it, every request is its own model call.
@pytest.mark.parametrize("batching", ["on", "off"])
def test_concurrent_clients_are_answered_correctly_and_batched_only_with_batching(
        request, models, images, batching):
    """24 clients x 5 single-image requests. Only the model calls made meanwhile are counted."""
    _, classifiers = models
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
    for row, status_code, body in results.values():
        assert status_code == 200
        np.testing.assert_allclose(body["predictions"][0]["probabilities"], reference[row], atol=1e-5)
    calls, rows = change("serving_batch_size_count"), change("serving_batch_size_sum")
    assert rows == 120, "every request of the phase reached the model, and nothing else did"
    if batching == "on":
        assert calls < rows, f"{calls:.0f} model calls for {rows:.0f} rows: nothing was batched"
    else:
        assert calls == rows, f"{calls:.0f} model calls for {rows:.0f} rows without batching"


# tensorflow/core/kernels/batching_util/shared_batch_scheduler.h: a request larger than
# max_batch_size is INVALID_ARGUMENT "Task size N is larger than maximum input batch size M".
def test_a_request_larger_than_a_batch_is_refused(server):
    reply = post(server, "/v1/models/clf:predict", {"instances": [_image()] * 65})   # max_batch_size 64
    assert reply.status_code == 400
    assert "Task size 65 is larger than maximum input batch size 64" in reply.json()["error"]


@pytest.fixture(scope="module")
def tls_server(models, tmp_path_factory):
    """gRPC with TLS and client certificates (--ssl_config_file), Prometheus at a custom path."""
    root, _ = models
    folder = tmp_path_factory.mktemp("tls")
    paths = tls.make_certificates(folder / "certs")
    (folder / "ssl.config").write_text(tls.ssl_config_text(paths["server_key"], paths["server_cert"],
                                                           paths["ca"], client_verify=True))
    (folder / "monitoring.config").write_text(
        'prometheus_config: {\n  enable: true,\n  path: "/custom/metrics"\n}\n')
    flags = [f"--ssl_config_file={folder / 'ssl.config'}",
             f"--monitoring_config_file={folder / 'monitoring.config'}"]
    with launcher.ModelServer("clf", root / "clf", flags) as running:
        running.certificates = paths
        yield running


# model_servers/server.cc (BuildServerCredentials: SslServerCredentials with the SSLConfig's key
# and certificate; client_verify: GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY).
def test_grpc_tls_requires_a_client_certificate_signed_by_the_custom_ca(tls_server, images):
    request = grpc_predict_request(images[:1])
    credentials = tls.client_credentials(tls_server.certificates)
    with grpc.secure_channel(tls_server.grpc_target, credentials) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=TIMEOUT)
    assert response.model_spec.version.value == 2
    without = tls.client_credentials(tls_server.certificates, with_certificate=False)
    for channel in (grpc.secure_channel(tls_server.grpc_target, without),
                    grpc.insecure_channel(tls_server.grpc_target)):
        with channel, pytest.raises(grpc.RpcError) as error:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=TIMEOUT)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE


# g3doc/serving_config.md (Monitoring Configuration), tensorflow_model_server_test.py
# (testPrometheusEndpoint: the path answers the Prometheus text format, "# TYPE").
def test_the_monitoring_config_file_serves_prometheus_metrics_at_its_path(tls_server):
    reply = get(tls_server, "/custom/metrics")
    assert reply.status_code == 200 and "# TYPE" in reply.text


def test_model_level_metrics_count_what_each_version_predicted_over_rest_and_grpc(server, models, images):
    from helpers.serving import metrics

    _, classifiers = models
    with metrics.MetricsChange(server.rest_url) as change:
        assert post(server, "/v1/models/clf:predict", {"instances": images[:5].tolist()}).status_code == 200
        with grpc.insecure_channel(server.grpc_target) as channel:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                grpc_predict_request(images[5:8]), timeout=TIMEOUT)
    served = expected(classifiers, 2, images[:8])
    predicted = np.bincount(served.argmax(axis=1), minlength=10)
    counted = [change("serving_predicted_class_total", model="clf", version="2", **{"class": str(c)})
               for c in range(10)]
    assert counted == predicted.tolist()
    assert change("serving_prediction_confidence_count", model="clf", version="2") == 8
    assert change("serving_prediction_confidence_sum", model="clf", version="2") == pytest.approx(
        float(served.max(axis=1).sum()), rel=1e-4)
