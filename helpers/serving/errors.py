"""The errors the server returns, with TF Serving's status codes.

TF Serving maps its internal status codes to HTTP statuses (``INVALID_ARGUMENT`` → 400,
``NOT_FOUND`` → 404, ``FAILED_PRECONDITION`` → 400, ``UNAUTHENTICATED`` → 401, ...) and always
answers with ``{"error": "<message>"}``; gRPC callers get the code itself.
"""

from __future__ import annotations

import grpc


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


class NotFound(ServingError):
    http_status = 404
    grpc_code = grpc.StatusCode.NOT_FOUND


class MethodNotAllowed(ServingError):
    http_status = 405
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
