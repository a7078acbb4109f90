"""TF Serving's gRPC services on the same models: ``PredictionService`` (Predict,
GetModelMetadata) and ``ModelService`` (GetModelStatus), from ``tensorflow-serving-api``'s protos,
so that ``prediction_service_pb2_grpc.PredictionServiceStub`` clients work unchanged.
"""

from __future__ import annotations

import time
from concurrent import futures

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from helpers.serving.errors import InvalidArgument, ServingError
from helpers.serving.models import ModelManager


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

    def _call(self, context, method, handler):
        started, version, code = time.perf_counter(), "", grpc.StatusCode.OK
        try:
            response, version = handler()
            return response
        except ServingError as error:
            code = error.grpc_code
            context.abort(error.grpc_code, error.message)
        except Exception as error:  # noqa: BLE001 - the client gets INTERNAL with the reason
            code = grpc.StatusCode.INTERNAL
            context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")
        finally:
            if self.metrics:
                self.metrics.observe_request(self.manager.name, version, f"grpc_{method}",
                                             code.name, time.perf_counter() - started)


class PredictionServicer(_Servicer, prediction_service_pb2_grpc.PredictionServiceServicer):
    def Predict(self, request, context):  # noqa: N802 - gRPC method name
        def handle():
            import numpy as np
            import tensorflow as tf

            version, label = _version_request(request.model_spec)
            loaded = self.manager.get(request.model_spec.name, version, label)
            signature = loaded.signature(request.model_spec.signature_name)
            names = set(signature.inputs)
            if set(request.inputs) != names:
                raise InvalidArgument(f"Request inputs {sorted(request.inputs)} do not match the "
                                      f"signature's inputs {sorted(names)}")
            inputs = {}
            for name, proto in request.inputs.items():
                try:
                    array = tf.make_ndarray(proto)
                except Exception as error:  # noqa: BLE001
                    raise InvalidArgument(f"Input '{name}': unreadable TensorProto: {error}") from None
                spec = signature.inputs[name]
                if spec.shape and (array.ndim != len(spec.shape) or any(
                        want is not None and want != got for want, got in zip(spec.shape, array.shape))):
                    raise InvalidArgument(f"Input '{name}' has shape {list(array.shape)}; expected "
                                          f"{[-1 if d is None else d for d in spec.shape]}")
                if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
                    raise InvalidArgument(f"Input '{name}' contains NaN or Infinity")
                inputs[name] = array
            if self.batcher:
                outputs = self.batcher.submit((loaded.version, signature.name), signature,
                                              inputs).result()
            else:
                if self.metrics:
                    self.metrics.observe_batch(len(next(iter(inputs.values()))))
                outputs = signature.run(inputs)
            wanted = list(request.output_filter) or list(outputs)
            unknown = sorted(set(wanted) - set(outputs))
            if unknown:
                raise InvalidArgument(f"output_filter names unknown outputs {unknown}")
            response = predict_pb2.PredictResponse()
            response.model_spec.name = request.model_spec.name
            response.model_spec.version.value = loaded.version
            response.model_spec.signature_name = signature.name
            for name in wanted:
                response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
            return response, str(loaded.version)

        return self._call(context, "predict", handle)

    def GetModelMetadata(self, request, context):  # noqa: N802
        def handle():
            if list(request.metadata_field) != ["signature_def"]:
                raise InvalidArgument("Metadata field must be ['signature_def'], got "
                                      f"{list(request.metadata_field)}")
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

        return self._call(context, "metadata", handle)


class ModelServicer(_Servicer, model_service_pb2_grpc.ModelServiceServicer):
    def GetModelStatus(self, request, context):  # noqa: N802
        def handle():
            version, _ = _version_request(request.model_spec)
            rows = self.manager.status(request.model_spec.name, version)
            response = get_model_status_pb2.GetModelStatusResponse()
            states = get_model_status_pb2.ModelVersionStatus.State
            for row in rows:
                entry = response.model_version_status.add()
                entry.version = int(row["version"])
                entry.state = states.Value(row["state"])
                entry.status.error_message = row["status"]["error_message"]
                entry.status.error_code = 0 if row["status"]["error_code"] == "OK" else 2
            return response, ""

        return self._call(context, "status", handle)


def create_server(manager: ModelManager, port: int, host: str = "127.0.0.1", batcher=None,
                  metrics=None, max_message_bytes: int = 10 * 1024 * 1024, workers: int = 16):
    """A started-ready ``grpc.Server`` bound to ``host:port`` (call ``.start()``)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=[
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(manager, batcher, metrics), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelServicer(manager, batcher, metrics), server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"Cannot bind gRPC to {host}:{port}")
    return server
