"""Bearer-token authentication, the same on REST and gRPC (``--auth_token_file``).

REST requests under ``/v1/`` must send the header ``Authorization: Bearer <token>``; gRPC calls
(every method of both services) the metadata ``authorization: Bearer <token>``. Anything else
is refused with 401 / ``UNAUTHENTICATED``. The token is compared in constant time.
``/monitoring/prometheus/metrics`` stays open: a Prometheus scraper usually has no token, and
the metrics hold only counts and timings (no inputs, no predictions).
"""

from __future__ import annotations

import hmac
from pathlib import Path

REST_MESSAGE = "Missing or wrong bearer token (send 'Authorization: Bearer <token>')"
GRPC_MESSAGE = "Missing or wrong bearer token (send the metadata 'authorization: Bearer <token>')"


def read_token(path: Path) -> str:
    """The token in ``path``, without surrounding whitespace; ``ValueError`` if there is none.

    An empty token file would otherwise switch authentication off without a word.
    """
    token = Path(path).read_text().strip()
    if not token:
        raise ValueError(f"--auth_token_file {path} holds no token")
    return token


def bearer_ok(supplied: str | None, token: str) -> bool:
    """Whether ``supplied`` (an Authorization header or metadata value) is ``Bearer <token>``."""
    return hmac.compare_digest((supplied or "").encode(), f"Bearer {token}".encode())
