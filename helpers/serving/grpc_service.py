"""TF Serving's gRPC services on the same models: ``PredictionService`` (Predict,
GetModelMetadata) and ``ModelService`` (GetModelStatus, HandleReloadConfigRequest), from
``tensorflow-serving-api``'s protos, so that ``prediction_service_pb2_grpc.PredictionServiceStub``
clients work unchanged. Errors carry TF Serving's codes and wording (``predict_util.cc``,
``get_model_metadata_impl.cc``, ``model_service_impl.cc``).

Inputs are checked by :func:`codec.validate_tensor`, as on REST, so both answer the same
message for the same bad tensor. With ``--ssl_config_file`` the port speaks TLS and, with
``client_verify``, accepts only clients whose certificate the ``custom_ca`` signed (TF Serving's
``BuildServerCredentials`` in ``server.cc``). With a token (``--auth_token_file``, this server's
own) every call must carry the metadata ``authorization: Bearer <token>``
(:class:`BearerTokenInterceptor`). Unexpected errors are logged with a request id and answered
``INTERNAL`` with that id only.
"""

from __future__ import annotations

import time
from concurrent import futures

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from helpers.serving import auth, codec
from helpers.serving.errors import InvalidArgument, ServingError, report_internal_error
from helpers.serving.models import ModelManager

_ERROR_CODES = get_model_status_pb2.ModelVersionStatus.DESCRIPTOR.fields_by_name["status"].message_type \
    .fields_by_name["error_code"].enum_type      # tensorflow.error.Code
API_NAMES = {"Predict": "grpc_predict", "GetModelMetadata": "grpc_metadata", "GetModelStatus": "grpc_status",
             "HandleReloadConfigRequest": "grpc_reload_config"}


def _version_request(spec):
    """(version, label) from a ModelSpec: its ``version`` (Int64Value) or ``version_label``."""
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        return spec.version.value, None
    if choice == "version_label":
        return None, spec.version_label
    return None, None


class _Servicer:
    def __init__(self, manager: ModelManager, batcher=None, metrics=None):
        self.manager, self.batcher, self.metrics = manager, batcher, metrics

    def _call(self, context, method, handler, model=""):
        started, version, code = time.perf_counter(), "", grpc.StatusCode.OK
        try:
            response, version = handler()
            return response
        except ServingError as error:
            code = error.grpc_code
            context.abort(error.grpc_code, error.message)
        except Exception as error:  # noqa: BLE001 - logged; the client gets a request id only
            code = grpc.StatusCode.INTERNAL
            context.abort(grpc.StatusCode.INTERNAL, report_internal_error(error, f"gRPC {method}"))
        finally:
            if self.metrics:
                self.metrics.observe_request(model, version, API_NAMES[method],
                                             code.name, time.perf_counter() - started)


class PredictionServicer(_Servicer, prediction_service_pb2_grpc.PredictionServiceServicer):
    def Predict(self, request, context):  # noqa: N802 - gRPC method name
        def handle():
            import tensorflow as tf

            version, label = _version_request(request.model_spec)
            loaded = self.manager.get(request.model_spec.name, version, label)
            signature = loaded.signature(request.model_spec.signature_name)
            inputs = codec.inputs_from_protos(request.inputs, signature)
            if self.batcher:
                outputs = self.batcher.submit((loaded.name, loaded.version, signature.name), signature,
                                              inputs).result()
            else:
                if self.metrics:
                    self.metrics.observe_batch(len(next(iter(inputs.values()))))
                outputs = signature.run(inputs)
            if self.metrics:
                self.metrics.observe_outputs(loaded.name, str(loaded.version), outputs)
            wanted = list(request.output_filter) or list(outputs)
            for alias in wanted:
                if alias not in outputs:
                    raise InvalidArgument(f"output tensor alias not found in signature: {alias} Outputs "
                                          f"expected to be in the set {{{','.join(sorted(outputs))}}}.")
            if len(set(wanted)) != len(wanted):
                raise InvalidArgument(f"duplicate output tensor alias: {wanted}")
            response = predict_pb2.PredictResponse()
            response.model_spec.name = request.model_spec.name
            response.model_spec.version.value = loaded.version
            response.model_spec.signature_name = signature.name
            for name in wanted:
                response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
            return response, str(loaded.version)

        return self._call(context, "Predict", handle, request.model_spec.name)

    def GetModelMetadata(self, request, context):  # noqa: N802
        def handle():
            if not request.metadata_field:
                raise InvalidArgument("GetModelMetadataRequest must specify at least one metadata_field")
            for field in request.metadata_field:
                if field != "signature_def":
                    raise InvalidArgument(f"Metadata field {field} is not supported")
            version, label = _version_request(request.model_spec)
            loaded = self.manager.get(request.model_spec.name, version, label)
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            for name, definition in loaded.signature_defs.items():
                signature_map.signature_def[name].CopyFrom(definition)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = request.model_spec.name
            response.model_spec.version.value = loaded.version
            response.metadata["signature_def"].Pack(signature_map)
            return response, str(loaded.version)

        return self._call(context, "GetModelMetadata", handle, request.model_spec.name)


class ModelServicer(_Servicer, model_service_pb2_grpc.ModelServiceServicer):
    def GetModelStatus(self, request, context):  # noqa: N802
        def handle():
            version, _ = _version_request(request.model_spec)    # a label is ignored, as in TF Serving
            rows = self.manager.status(request.model_spec.name, version)
            response = get_model_status_pb2.GetModelStatusResponse()
            states = get_model_status_pb2.ModelVersionStatus.State
            for row in rows:
                entry = response.model_version_status.add()
                entry.version = int(row["version"])
                entry.state = states.Value(row["state"])
                entry.status.error_message = row["status"]["error_message"]
                entry.status.error_code = _ERROR_CODES.values_by_name[row["status"]["error_code"]].number
            return response, ""

        return self._call(context, "GetModelStatus", handle, request.model_spec.name)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        """Serve the models of ``request.config`` from now on, as a changed config file would."""
        def handle():
            from helpers.serving.config import validate_model_server_config

            if request.config.WhichOneof("config") != "model_config_list":
                raise InvalidArgument("ServerModelConfig type not supported by HandleReloadConfigRequest. "
                                      "Only ModelConfigList is currently supported")
            try:
                validate_model_server_config(request.config)
            except ValueError as error:
                raise InvalidArgument(str(error)) from None
            self.manager.apply_config(request.config)
            return model_management_pb2.ReloadConfigResponse(), ""

        return self._call(context, "HandleReloadConfigRequest", handle)


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuses every call whose metadata lacks ``authorization: Bearer <token>`` (UNAUTHENTICATED).

    Refusals are counted in the metrics, as REST's 401s are.
    """

    def __init__(self, token: str, model_name: str = "", metrics=None):
        self.token, self.model_name, self.metrics = token, model_name, metrics

        def refuse(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, auth.GRPC_MESSAGE)

        self._refuse = grpc.unary_unary_rpc_method_handler(refuse)

    def intercept_service(self, continuation, handler_call_details):
        """The method's own handler when the token is right, else one that refuses."""
        started = time.perf_counter()
        supplied = next((value for key, value in handler_call_details.invocation_metadata or ()
                         if key == "authorization"), None)
        if isinstance(supplied, str) and auth.bearer_ok(supplied, self.token):
            return continuation(handler_call_details)
        if self.metrics:
            method = handler_call_details.method.rsplit("/", 1)[-1]
            self.metrics.observe_request(self.model_name, "", API_NAMES.get(method, "grpc"),
                                         grpc.StatusCode.UNAUTHENTICATED.name,
                                         time.perf_counter() - started)
        return self._refuse


def create_server(manager: ModelManager, port: int, host: str = "127.0.0.1", batcher=None,
                  metrics=None, max_message_bytes: int = 10 * 1024 * 1024, workers: int = 16,
                  token: str | None = None, ssl_config=None):
    """A started-ready ``grpc.Server`` bound to ``host:port`` (call ``.start()``).

    With ``token`` every call must send the metadata ``authorization: Bearer <token>``. With
    ``ssl_config`` (an ``SSLConfig``, see :func:`config.read_ssl_config`) the port speaks TLS
    with its key and certificate and, if ``client_verify``, requires a client certificate signed
    by ``custom_ca``, as ``tensorflow_model_server --ssl_config_file`` does.
    """
    only_model = manager.names[0] if len(manager.names) == 1 else ""      # for refused calls' metrics
    interceptors = [BearerTokenInterceptor(token, only_model, metrics)] if token else []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), interceptors=interceptors,
                         options=[("grpc.max_receive_message_length", max_message_bytes),
                                  ("grpc.max_send_message_length", max_message_bytes)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(manager, batcher, metrics), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelServicer(manager, batcher, metrics), server)
    address = f"{host}:{port}"
    if ssl_config is None:
        bound = server.add_insecure_port(address)
    else:
        credentials = grpc.ssl_server_credentials(
            [(ssl_config.server_key.encode(), ssl_config.server_cert.encode())],
            root_certificates=ssl_config.custom_ca.encode() or None,
            require_client_auth=ssl_config.client_verify)
        bound = server.add_secure_port(address, credentials)
    if bound == 0:
        raise OSError(f"Cannot bind gRPC to {address}")
    return server
