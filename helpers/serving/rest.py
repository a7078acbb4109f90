"""TF Serving's REST API as a FastAPI app, with Prometheus metrics, a size limit and auth.

Requests under ``/v1/`` are dispatched as TF Serving dispatches them (``ParseModelInfo`` in
``model_servers/http_rest_api_util.cc``), with its regular expressions, case-insensitive::

    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict        (:classify, :regress: 501 here)
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}][/metadata]     status or metadata

Any other method or path under ``/v1/`` is 400 ``Malformed request: <METHOD> <path>``;
``GET /v1/models`` is 400 ``Missing model name in request.``; an ``OPTIONS`` request is a CORS
pre-flight (200 with an ``Origin`` header, else 400). Every error is ``{"error": "..."}`` with
TF Serving's HTTP status. The metadata is the ``GetModelMetadataResponse`` printed with the
proto field names (``signature_def``, ``tensor_shape``, ``method_name``), as TF Serving prints it
(``ToJsonString`` there). Prometheus metrics are served at the monitoring config's path.

This server's own additions: with a token, every ``/v1/`` route needs ``Authorization: Bearer
<token>`` (401); bodies above ``--max_request_bytes`` get 413; the metrics route stays open
(see :mod:`.auth`). An unexpected error is logged with its traceback and a request id, and
answered 500 ``{"error": "Internal error (request id ...)"}`` without the exception's text.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from starlette.exceptions import HTTPException as StarletteHTTPException

from helpers.serving import auth, codec
from helpers.serving.config import PROMETHEUS_PATH
from helpers.serving.errors import (
    FailedPrecondition,
    InvalidArgument,
    PayloadTooLarge,
    ServingError,
    Unauthenticated,
    Unimplemented,
    report_internal_error,
)
from helpers.serving.models import ModelManager

# TF Serving's kPredictionApiGegex and kModelStatusApiRegex (model_servers/http_rest_api_util.cc).
PREDICT_PATH = re.compile(r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
                          r":(classify|regress|predict)", re.IGNORECASE)
STATUS_PATH = re.compile(r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
                         r"(?:/(metadata))?", re.IGNORECASE)
INT64_MAX = 2**63 - 1


@dataclass
class Options:
    """What the REST app needs besides the models: limits, auth, batching and metrics."""

    max_request_bytes: int = 10 * 1024 * 1024
    auth_token: str | None = None
    batcher: object | None = None
    metrics: object | None = None
    metrics_path: str = PROMETHEUS_PATH


def _as_json(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def metadata_body(manager: ModelManager, name: str, version=None, label=None) -> dict:
    """TF Serving's GetModelMetadataResponse as its REST API prints it: ``model_spec`` and the
    ``signature_def`` map of every SignatureDef, with the proto field names."""
    from tensorflow_serving.apis import model_pb2

    loaded = manager.get(name, version, label)
    spec = model_pb2.ModelSpec(name=name)
    spec.version.value = loaded.version
    return {"model_spec": _as_json(spec),
            "metadata": {"signature_def": {"signature_def": {
                key: _as_json(value) for key, value in loaded.signature_defs.items()}}}}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body of {int(declared):,} bytes exceeds the limit of "
                              f"{limit:,} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit:,} bytes")
    return bytes(body)


def parse_path(method: str, path: str) -> dict | None:
    """TF Serving's ``ParseModelInfo``: the model, version, label and verb (``predict``,
    ``metadata``, ...) of a ``/v1/`` path (already percent-decoded), or ``None`` when the method and
    path match none of its URLs (a malformed request)."""
    found = (PREDICT_PATH if method == "POST" else STATUS_PATH).fullmatch(path) if method in (
        "POST", "GET") else None
    if found is None:
        return None
    name, version, label, verb = found.groups()
    if version is not None and int(version) > INT64_MAX:
        raise InvalidArgument(f"Failed to convert version: {version} to numeric.")
    return {"name": name or "", "version": int(version) if version else None, "label": label,
            "verb": (verb or "").lower()}


def _model_of(request: Request) -> str:
    """The model a request names (for the metrics of a refused request), or ""."""
    try:
        return (parse_path(request.method, request.url.path) or {"name": ""})["name"]
    except ServingError:
        return ""


def create_app(manager: ModelManager, options: Options | None = None) -> FastAPI:
    """The REST app serving ``manager``'s models."""
    options = options or Options()
    app = FastAPI(title="TF Serving-compatible model server", docs_url=None, redoc_url=None)
    metrics = options.metrics

    @app.exception_handler(ServingError)
    async def serving_error(request: Request, error: ServingError):
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthenticated) else None
        return JSONResponse({"error": error.message}, status_code=error.http_status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return JSONResponse({"error": f"Not found: {request.method} {request.url.path}"},
                            status_code=error.status_code)

    def internal_error(request: Request, error: Exception) -> JSONResponse:
        message = report_internal_error(error, f"{request.method} {request.url.path}")
        return JSONResponse({"error": message}, status_code=500)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        return internal_error(request, error)     # only for errors outside the middleware below

    @app.middleware("http")
    async def authenticate_and_count(request: Request, call_next):
        started = time.perf_counter()
        api = request.url.path.lower().startswith("/v1/")
        if options.auth_token and api:
            if not auth.bearer_ok(request.headers.get("authorization"), options.auth_token):
                response = await serving_error(request, Unauthenticated(auth.REST_MESSAGE))
                if metrics:
                    metrics.observe_request(_model_of(request), "", "rest", response.status_code,
                                            time.perf_counter() - started)
                return response
        try:
            response = await call_next(request)
        except Exception as error:  # noqa: BLE001 - logged with a request id; no details to the client
            response = internal_error(request, error)
        if metrics and api:
            state = request.state
            metrics.observe_request(getattr(state, "model", ""), getattr(state, "version", ""), "rest",
                                    response.status_code, time.perf_counter() - started)
        return response

    async def predict(request: Request, name: str, version=None, label=None):
        loaded = manager.get(name, version, label)
        request.state.version = str(loaded.version)
        document = codec.parse_json(await read_body(request, options.max_request_bytes))
        signature = loaded.signature(codec.signature_name(document))
        inputs, request_format = codec.request_inputs(document, signature)
        if options.batcher:
            future = options.batcher.submit((name, loaded.version, signature.name), signature, inputs)
            outputs = await asyncio.wrap_future(future)
        else:
            if metrics:
                metrics.observe_batch(len(next(iter(inputs.values()))))
            outputs = await asyncio.to_thread(signature.run, inputs)
        if metrics:
            metrics.observe_outputs(name, str(loaded.version), outputs)
        return codec.response_body(outputs, request_format)

    if metrics:                                  # before the catch-all route below
        @app.get(options.metrics_path)
        async def prometheus():
            body, content_type = metrics.exposition()
            return Response(body, media_type=content_type)

    @app.api_route("/{prefix}/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
    async def dispatch(request: Request, prefix: str, rest: str):
        method, path = request.method, request.url.path
        if prefix.lower() != "v1":                   # TF Serving handles (?i)/v1/.* only
            return await http_error(request, StarletteHTTPException(404))
        if method == "OPTIONS":                      # CORS pre-flight, as TF Serving answers it
            if re.match(r"https?://", request.headers.get("origin", "")):
                return Response(status_code=200)
            raise FailedPrecondition("Origin header is missing in CORS preflight")
        parts = parse_path(method, path)
        if parts is None:
            raise InvalidArgument(f"Malformed request: {method} {path}")
        request.state.model = parts["name"]
        if method == "POST":
            if parts["verb"] != "predict":
                raise Unimplemented(f"This server implements :predict only, not :{parts['verb']} "
                                    f"(TF Serving's Classify and Regress APIs take tf.Example inputs)")
            return await predict(request, parts["name"], parts["version"], parts["label"])
        if not parts["name"]:
            raise InvalidArgument("Missing model name in request.")
        if parts["verb"] == "metadata":
            return metadata_body(manager, parts["name"], parts["version"], parts["label"])
        # TF Serving's GetModelStatus ignores a label and lists every version.
        return {"model_version_status": manager.status(parts["name"], parts["version"])}

    return app
