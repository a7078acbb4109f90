import http.server
import threading
import time

import numpy as np
import pytest

from helpers import loadtest


def test_closed_loop_counts_latencies_statuses_and_exceptions():
    def send(client, i):
        time.sleep(0.002)
        if i % 10 == 3:
            raise ConnectionError("refused")
        return 200 if i % 10 else 503

    result = loadtest.closed_loop(send, concurrency=4, duration_s=0.3, warmup_s=0.05)
    assert result.requests > 40 and len(result.latencies_s) == result.requests
    assert result.statuses[503] > 0 and result.statuses["exception"] > 0
    assert result.errors == result.statuses[503] + result.statuses["exception"]
    assert "ConnectionError: refused" in result.first_error
    summary = result.summary()
    assert summary["concurrency"] == 4 and 0.3 <= result.duration_s < 0.5
    # 2 ms of sleep per request: milliseconds, neither seconds nor microseconds.
    assert 2 <= summary["p50_ms"] <= summary["p99_ms"] < 200 and 2 <= summary["mean_ms"] < 200
    assert summary["p50_ms"] == pytest.approx(np.median(result.latencies_s) * 1000)
    assert summary["requests"] == result.requests and summary["errors"] == result.errors
    assert summary["rps"] == pytest.approx(result.requests / result.duration_s)


def test_closed_loop_threads_send_different_payloads_and_close_clients():
    seen, closed = set(), []

    class Client:
        def close(self):
            closed.append(self)

    def send(client, i):
        seen.add(i % 3)
        time.sleep(0.001)
        return 200

    result = loadtest.closed_loop(send, concurrency=3, duration_s=0.05, client_factory=Client)
    assert seen == {0, 1, 2} and len(closed) == 3 and result.errors == 0


def test_closed_loop_stops_early_when_asked():
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    started = time.perf_counter()
    result = loadtest.closed_loop(lambda c, i: time.sleep(0.001) or 200, 2, duration_s=30, stop=stop)
    assert time.perf_counter() - started < 2 and result.requests > 10


def test_warm_up_requests_are_not_measured():
    def send(client, i):
        time.sleep(0.3 if time.perf_counter() < warm_until else 0.002)   # slow only at the start
        return 200

    warm_until = time.perf_counter() + 0.05
    result = loadtest.closed_loop(send, concurrency=2, duration_s=0.2, warmup_s=0.4)
    assert result.requests > 10 and result.latencies_s.max() < 0.25     # no 0.3 s request counted


def test_an_empty_result_reports_nan_not_zero():
    result = loadtest.LoadResult(concurrency=1, duration_s=0.0, latencies_s=np.array([]))
    summary = result.summary()
    assert summary["requests"] == 0 and summary["rps"] == 0.0
    assert np.isnan(summary["p50_ms"]) and np.isnan(summary["p99_ms"]) and np.isnan(summary["mean_ms"])


def test_closed_loop_rejects_nonsense():
    with pytest.raises(ValueError):
        loadtest.closed_loop(lambda c, i: 200, concurrency=0, duration_s=1)
    with pytest.raises(ValueError):
        loadtest.closed_loop(lambda c, i: 200, concurrency=1, duration_s=0)


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if body == b"close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        body = f"{self.path} {self.headers.get('Authorization')} {self.headers.get('Content-Type')}"
        self.send_response(404 if self.path == "/missing" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def test_http_client_keeps_the_connection_and_reconnects():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = loadtest.HttpClient(f"http://127.0.0.1:{server.server_address[1]}")
        assert client.post("/x", b"one") == (200, b"one")
        connection = client._connection
        assert client.post("/x", b"two") == (200, b"two") and client._connection is connection
        assert client.post("/x", b"close") == (200, b"close")      # the server closes after this
        assert client.post("/x", b"three") == (200, b"three")      # transparently reconnected
        client.close()
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ValueError, match="http://host:port"):
        loadtest.HttpClient("127.0.0.1:8501")


def test_http_client_sends_its_headers_and_returns_the_status():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = loadtest.HttpClient(f"http://127.0.0.1:{server.server_address[1]}",
                                     headers={"Authorization": "Bearer t0ken"})
        assert client.get("/v1/models/m") == (200, b"/v1/models/m Bearer t0ken application/json")
        assert client.get("/missing")[0] == 404
        client.close()
        assert client._connection is None
    finally:
        server.shutdown()
        server.server_close()


def test_in_background_runs_until_the_block_ends():
    sent = []

    def send(client, i):
        sent.append(time.perf_counter())
        time.sleep(0.001)
        return 200

    with loadtest.in_background(send, 2) as background:
        entered = time.perf_counter()
        time.sleep(0.3)
        assert background.result is None and sent and min(sent) < entered + 0.2   # already loading
        left = time.perf_counter()
    assert background.result.requests == len(sent) > 10 and background.result.errors == 0
    assert max(sent) >= left - 0.2 and max(sent) < time.perf_counter()          # until the end
    assert 0.25 < background.result.duration_s < 5
