"""Closed-loop load tests: N clients, each sending its next request as soon as its answer came.

    def send(client, i):
        return client.post("/v1/models/m:predict", bodies[i % len(bodies)])[0]

    result = loadtest.closed_loop(send, concurrency=8, duration_s=3,
                                  client_factory=lambda: loadtest.HttpClient("http://127.0.0.1:8501"))
    result.summary()   # requests, errors, rps, p50_ms, p99_ms

Throughput (requests per second) and latency percentiles are measured over the same window. On a
machine where the load generator shares the CPU with the server, the generator should cost as
little as possible: :class:`HttpClient` is a bare keep-alive ``http.client`` connection (no
``requests`` session machinery), and request bodies should be encoded before the test starts.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np


class HttpClient:
    """One persistent HTTP/1.1 connection; reconnects once if the server closed it."""

    def __init__(self, base_url: str, headers: dict | None = None, timeout_s: float = 30):
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"Expected http://host:port, got {base_url!r}")
        self.host, self.port, self.timeout_s = parts.hostname, parts.port or 80, timeout_s
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        return self._connection

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Send one request; returns (status, body)."""
        for attempt in (1, 2):
            connection = self._connect()
            try:
                connection.request(method, path, body=body, headers=self.headers)
                response = connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        return self.request("POST", path, body)

    def get(self, path: str) -> tuple[int, bytes]:
        return self.request("GET", path)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass
class LoadResult:
    """What one load test measured; latencies in seconds, in completion order."""

    concurrency: int
    duration_s: float
    latencies_s: np.ndarray
    statuses: Counter = field(default_factory=Counter)
    first_error: str = ""

    @property
    def requests(self) -> int:
        return len(self.latencies_s)

    @property
    def errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != 200)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_s, q) * 1000) if self.requests else float("nan")

    def summary(self) -> dict:
        """One row for a table: concurrency, requests, errors, rps, mean_ms, p50_ms, p99_ms."""
        mean_ms = float(np.mean(self.latencies_s) * 1000) if self.requests else float("nan")
        return {"concurrency": self.concurrency, "requests": self.requests, "errors": self.errors,
                "rps": self.rps, "mean_ms": mean_ms, "p50_ms": self.percentile_ms(50),
                "p99_ms": self.percentile_ms(99)}


def closed_loop(send: Callable[[object, int], int], concurrency: int, duration_s: float,
                client_factory: Callable[[], object] = lambda: None, warmup_s: float = 0.0,
                stop: threading.Event | None = None) -> LoadResult:
    """Run ``concurrency`` threads for ``warmup_s + duration_s`` seconds.

    Each thread makes its own client with ``client_factory()`` and calls ``send(client, i)``
    (``i`` counts that thread's requests, offset by the thread number so threads send different
    payloads) in a loop; ``send`` returns the HTTP (or gRPC-mapped) status, 200 meaning success.
    An exception counts as status ``"exception"`` and does not stop the thread. Only requests
    that *start* after the warm-up are measured; the window runs from the end of the warm-up until
    the last answer (requests started before the deadline are waited for). Setting ``stop``
    ends the test early (for load that runs in the background while something else happens).
    """
    if concurrency < 1 or duration_s <= 0:
        raise ValueError("concurrency must be >= 1 and duration_s > 0")
    start = time.perf_counter()
    measure_from, deadline = start + warmup_s, start + warmup_s + duration_s
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors: list[str] = []

    def worker(number: int) -> None:
        client = client_factory()
        i = number
        try:
            while (began := time.perf_counter()) < deadline and not (stop and stop.is_set()):
                try:
                    status = send(client, i)
                except Exception as error:  # noqa: BLE001 - a load test records failures
                    status = "exception"
                    errors.append(f"{type(error).__name__}: {error}")
                ended = time.perf_counter()
                if began >= measure_from:
                    with lock:
                        latencies.append(ended - began)
                        statuses[status] += 1
                i += concurrency
        finally:
            close = getattr(client, "close", None)
            if close:
                close()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    window = time.perf_counter() - measure_from     # the last measured answer arrived by now
    return LoadResult(concurrency, window, np.asarray(latencies), statuses, errors[0] if errors else "")


@contextlib.contextmanager
def in_background(send: Callable[[object, int], int], concurrency: int,
                  client_factory: Callable[[], object] = lambda: None, max_duration_s: float = 600):
    """Keep a closed-loop load running while the ``with`` block runs; its result afterwards.

        with loadtest.in_background(send, 4, make_client) as background:
            ...                                   # deploy, roll back
        background.result.errors                  # requests that failed meanwhile
    """
    stop = threading.Event()
    holder = _Background()
    thread = threading.Thread(target=lambda: setattr(holder, "result", closed_loop(
        send, concurrency, max_duration_s, client_factory, stop=stop)), daemon=True)
    thread.start()
    try:
        yield holder
    finally:
        stop.set()
        thread.join()


@dataclass
class _Background:
    result: LoadResult | None = None
