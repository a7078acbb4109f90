"""TF Serving's REST API as a FastAPI app, with Prometheus metrics, a size limit and auth.

Routes (``api_rest.md``)::

    GET  /v1/models/{name}[/versions/{v}]                 model status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict
    GET  /monitoring/prometheus/metrics                     (with --enable_monitoring)

Every error is ``{"error": "..."}`` with TF Serving's HTTP status. With a token, every ``/v1/``
route needs ``Authorization: Bearer <token>``; the metrics route stays open (see :mod:`.auth`).
An unexpected error is logged with its traceback and a request id, and answered 500
``{"error": "Internal error (request id ...)"}`` without the exception's text.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from starlette.exceptions import HTTPException as StarletteHTTPException

from helpers.serving import auth, codec
from helpers.serving.errors import (
    MethodNotAllowed,
    PayloadTooLarge,
    ServingError,
    Unauthenticated,
    report_internal_error,
)
from helpers.serving.models import ModelManager


@dataclass
class Options:
    """What the REST app needs besides the models: limits, auth, batching and metrics."""

    max_request_bytes: int = 10 * 1024 * 1024
    auth_token: str | None = None
    batcher: object | None = None
    metrics: object | None = None


def metadata_body(manager: ModelManager, name: str, version=None, label=None) -> dict:
    """TF Serving's GetModelMetadataResponse as JSON: model_spec and signature_def map."""
    loaded = manager.get(name, version, label)
    defs = {key: json_format.MessageToDict(value) for key, value in loaded.signature_defs.items()}
    return {"model_spec": {"name": name, "signature_name": "", "version": str(loaded.version)},
            "metadata": {"signature_def": {"signature_def": defs}}}


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


def create_app(manager: ModelManager, options: Options | None = None) -> FastAPI:
    """The REST app for ``manager``'s model."""
    options = options or Options()
    app = FastAPI(title="TF Serving-compatible model server", docs_url=None, redoc_url=None)
    metrics = options.metrics

    @app.exception_handler(ServingError)
    async def serving_error(request: Request, error: ServingError):
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthenticated) else None
        return JSONResponse({"error": error.message}, status_code=error.http_status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        message = "Malformed request: " + request.method + " " + request.url.path
        if error.status_code == 405:
            message = f"Method {request.method} not allowed on {request.url.path}"
        return JSONResponse({"error": message}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        return JSONResponse({"error": f"Invalid request: {error.errors()}"}, status_code=400)

    def internal_error(request: Request, error: Exception) -> JSONResponse:
        message = report_internal_error(error, f"{request.method} {request.url.path}")
        return JSONResponse({"error": message}, status_code=500)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        return internal_error(request, error)     # only for errors outside the middleware below

    @app.middleware("http")
    async def authenticate_and_count(request: Request, call_next):
        started = time.perf_counter()
        if options.auth_token and request.url.path.startswith("/v1/"):
            if not auth.bearer_ok(request.headers.get("authorization"), options.auth_token):
                response = await serving_error(request, Unauthenticated(auth.REST_MESSAGE))
                if metrics:
                    metrics.observe_request(manager.name, "", "rest", response.status_code,
                                            time.perf_counter() - started)
                return response
        try:
            response = await call_next(request)
        except Exception as error:  # noqa: BLE001 - logged with a request id; no details to the client
            response = internal_error(request, error)
        if metrics and request.url.path.startswith("/v1/"):
            metrics.observe_request(manager.name, getattr(request.state, "version", ""), "rest",
                                    response.status_code, time.perf_counter() - started)
        return response

    # ---- status and metadata -------------------------------------------------------------
    def refuse_get_on_predict(name: str, version: str = "") -> None:
        """``GET .../fashion:predict`` would otherwise look up a model called "fashion:predict"."""
        if ":" in name or ":" in version:
            raise MethodNotAllowed("Method GET not allowed on :predict; send POST")

    @app.get("/v1/models/{name}")
    async def status(name: str):
        refuse_get_on_predict(name)
        return {"model_version_status": manager.status(name)}

    @app.get("/v1/models/{name}/versions/{version}")
    async def status_of_version(name: str, version: str):
        refuse_get_on_predict(name, version)
        return {"model_version_status": manager.status(name, version)}

    @app.get("/v1/models/{name}/metadata")
    async def metadata(name: str):
        return metadata_body(manager, name)

    @app.get("/v1/models/{name}/versions/{version}/metadata")
    async def metadata_of_version(name: str, version: str):
        return metadata_body(manager, name, version=version)

    @app.get("/v1/models/{name}/labels/{label}/metadata")
    async def metadata_of_label(name: str, label: str):
        return metadata_body(manager, name, label=label)

    # ---- predict ---------------------------------------------------------------------------
    async def predict(request: Request, name: str, version=None, label=None):
        loaded = manager.get(name, version, label)
        request.state.version = str(loaded.version)
        document = codec.parse_json(await read_body(request, options.max_request_bytes))
        signature = loaded.signature(document.get("signature_name"))
        inputs, request_format = codec.request_inputs(document, signature)
        if options.batcher:
            future = options.batcher.submit((loaded.version, signature.name), signature, inputs)
            outputs = await asyncio.wrap_future(future)
        else:
            if metrics:
                metrics.observe_batch(len(next(iter(inputs.values()))))
            outputs = await asyncio.to_thread(signature.run, inputs)
        return codec.response_body(outputs, request_format)

    @app.post("/v1/models/{name}:predict")
    async def predict_latest(name: str, request: Request):
        return await predict(request, name)

    @app.post("/v1/models/{name}/versions/{version}:predict")
    async def predict_version(name: str, version: str, request: Request):
        return await predict(request, name, version=version)

    @app.post("/v1/models/{name}/labels/{label}:predict")
    async def predict_label(name: str, label: str, request: Request):
        return await predict(request, name, label=label)

    if metrics:
        @app.get("/monitoring/prometheus/metrics")
        async def prometheus():
            body, content_type = metrics.exposition()
            return Response(body, media_type=content_type)

    return app
