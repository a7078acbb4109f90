"""The errors the server returns, with TF Serving's status codes.

TF Serving maps its internal status codes to HTTP statuses (``ToHTTPStatusCode`` in
``model_servers/http_server.cc``: ``INVALID_ARGUMENT`` and ``FAILED_PRECONDITION`` → 400,
``NOT_FOUND`` → 404, ``UNAUTHENTICATED`` → 401, ``RESOURCE_EXHAUSTED`` → 429,
``UNIMPLEMENTED`` → 501, ``UNAVAILABLE`` → 503, ``DEADLINE_EXCEEDED`` → 504) and always answers
with ``{"error": "<message>"}`` (``MakeJsonFromStatus``); gRPC callers get the code itself.
This server's own 413 (``--max_request_bytes``) has no TF Serving counterpart.

Anything else that goes wrong while serving a request (a bug, a model that raises) is an internal
error: :func:`report_internal_error` logs it with its traceback under a new request id, and the
client gets only ``Internal error (request id ...)``, never the exception's text, which can hold
paths, library internals or data.
"""

from __future__ import annotations

import logging
import uuid

import grpc

log = logging.getLogger("helpers.serving")


class ServingError(Exception):
    """A request that cannot be served: carries the HTTP status and the gRPC code."""

    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgument(ServingError):
    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class FailedPrecondition(ServingError):
    http_status = 400
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


class NotFound(ServingError):
    http_status = 404
    grpc_code = grpc.StatusCode.NOT_FOUND


class Unimplemented(ServingError):
    http_status = 501
    grpc_code = grpc.StatusCode.UNIMPLEMENTED


class PayloadTooLarge(ServingError):
    http_status = 413
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unauthenticated(ServingError):
    http_status = 401
    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class Unavailable(ServingError):
    http_status = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE


def report_internal_error(error: BaseException, where: str) -> str:
    """Log ``error`` with its traceback under a new request id; return the message for the client.

    ``where`` says what was being served (e.g. ``"POST /v1/models/m:predict"`` or
    ``"gRPC Predict"``). The message names the request id, which finds the traceback in the
    server's log, and nothing of the exception.
    """
    request_id = uuid.uuid4().hex
    log.error("internal error (request id %s) serving %s", request_id, where,
              exc_info=(type(error), error, error.__traceback__))
    return f"Internal error (request id {request_id})"
