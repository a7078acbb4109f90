"""helpers.locusttools: the locustfile it writes, a real 2-second headless locust run against a
tiny loopback HTTP server, the CSV readers, and a gRPC locustfile run against the course server."""

import http.server
import threading

import numpy as np
import pandas as pd
import pytest

from helpers import locusttools


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers["Content-Length"]))
        status = 200 if self.path == "/ok" else 500
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def tiny_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_write_locustfile_holds_path_body_and_stages(tmp_path):
    path = locusttools.write_locustfile(tmp_path / "lf.py", "/v1/models/m:predict", b'{"instances": [1]}',
                                        stages=[(2, 1), (5, 4)])
    text = path.read_text()
    compile(text, str(path), "exec")
    assert "PATH = '/v1/models/m:predict'" in text
    assert "BODY = b'{\"instances\": [1]}'" in text
    assert "STAGES = [(2, 1), (5, 4)]" in text
    assert "constant(0)" in text


@pytest.mark.parametrize("kwargs", [{"request_path": "no-slash"},
                                    {"stages": [(5, 1), (2, 3)]}, {"stages": [(1, -1)]}])
def test_write_locustfile_rejects_bad_input(tmp_path, kwargs):
    arguments = {"request_path": "/p", "body": b"{}", **kwargs}
    with pytest.raises(ValueError):
        locusttools.write_locustfile(tmp_path / "lf.py", **arguments)


def test_run_locust_rejects_other_hosts_and_bad_bounds(tmp_path):
    with pytest.raises(ValueError, match="127.0.0.1"):
        locusttools.run_locust(tmp_path / "lf.py", "http://example.com", tmp_path / "x")
    with pytest.raises(ValueError):
        locusttools.run_locust(tmp_path / "lf.py", "http://127.0.0.1:1", tmp_path / "x", users=0)


def test_a_real_run_counts_requests_and_failures(tmp_path, tiny_server):
    ok = locusttools.write_locustfile(tmp_path / "ok.py", "/ok", b"{}")
    bad = locusttools.write_locustfile(tmp_path / "bad.py", "/fail", b"{}")
    good_run = locusttools.run_locust(ok, tiny_server, tmp_path / "good", users=2, seconds=2)
    bad_run = locusttools.run_locust(bad, tiny_server, tmp_path / "bad", users=1, seconds=2)
    good, failed = locusttools.summary(good_run), locusttools.summary(bad_run)
    assert good["requests"] > 20 and good["failures"] == 0 and good["rps"] > 10
    assert 0 < good["p50_ms"] <= good["p99_ms"] < 1000
    assert failed["requests"] > 0 and failed["failures"] == failed["requests"]
    errors = locusttools.failures(bad_run)
    assert "500" in errors["error"].iloc[0] and errors["occurrences"].sum() == failed["failures"]
    assert locusttools.failures(good_run).empty
    history = locusttools.history(good_run)
    assert list(history.columns) == ["time", "users", "rps", "failures_per_s", "p50_ms", "p99_ms",
                                     "requests", "failures"]
    assert len(history) >= 1 and history["users"].max() == 2
    assert history["requests"].is_monotonic_increasing and history["failures"].max() == 0
    counted = (history["rps"] * history["time"].diff().fillna(0)).sum()
    assert counted == pytest.approx(history["requests"].iloc[-1] - history["requests"].iloc[0], abs=1)
    assert history.loc[history["rps"] == 0, "p99_ms"].isna().all()


def test_history_rates_come_from_the_counts_and_stop_with_the_load(tmp_path):
    columns = ("Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,99%,"
               "Total Request Count,Total Failure Count")
    rows = ["100,2,,Aggregated,0,0,N/A,N/A,0,0", "101,2,POST,predict,50,0,10,20,50,0",
            "101,2,,Aggregated,50,0,10,20,50,0", "102,2,,Aggregated,60,5,12,30,110,5",
            "103,0,,Aggregated,60,5,12,30,110,5"]
    (tmp_path / "r_stats_history.csv").write_text("\n".join([columns, *rows]) + "\n")
    history = locusttools.history(tmp_path / "r")
    assert history["rps"].tolist() == [0, 50, 60, 0]          # locust's own column says 60 at the end
    assert history["failures_per_s"].tolist() == [0, 0, 5, 0]
    assert history["p99_ms"].isna().tolist() == [True, False, False, True]
    assert history["users"].tolist() == [2, 2, 2, 0]


def test_a_load_shape_changes_the_users(tmp_path, tiny_server):
    shaped = locusttools.write_locustfile(tmp_path / "shape.py", "/ok", b"{}", stages=[(2, 1), (4, 3)])
    history = locusttools.history(locusttools.run_locust(shaped, tiny_server, tmp_path / "s", users=3,
                                                         seconds=10))
    assert set(history["users"]) >= {1, 3}
    assert history["time"].iloc[-1] - history["time"].iloc[0] < 9    # the shape ended the run


def test_a_step_down_stops_the_users_at_once(tmp_path, tiny_server):
    shaped = locusttools.write_locustfile(tmp_path / "down.py", "/ok", b"{}", stages=[(2, 6), (5, 0)])
    assert "1000" in shaped.read_text()                     # not one user per second
    history = locusttools.history(locusttools.run_locust(shaped, tiny_server, tmp_path / "d", users=6,
                                                         seconds=10))
    after = history[history["time"] >= history["time"].iloc[0] + 4]   # one row to finish the last second
    assert 6 in set(history["users"]) and (after["users"] == 0).all() and (after["rps"] == 0).all()


def test_a_locustfile_that_does_not_load_raises_with_locusts_message(tmp_path, tiny_server):
    broken = tmp_path / "broken.py"
    broken.write_text("this is not python\n")
    with pytest.raises(RuntimeError, match="locust failed"):
        locusttools.run_locust(broken, tiny_server, tmp_path / "b", users=1, seconds=1)


def test_predict_request_serializes_the_images_for_the_model():
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    images = np.arange(2 * 28 * 28, dtype="float64").reshape(2, 28, 28, 1) / 1000
    request = predict_pb2.PredictRequest.FromString(locusttools.predict_request("fashion", images))
    assert request.model_spec.name == "fashion" and request.model_spec.signature_name == "serving_default"
    tensor = tf.make_ndarray(request.inputs["image"])
    assert tensor.dtype == np.float32 and tensor.shape == (2, 28, 28, 1)
    np.testing.assert_allclose(tensor, images, rtol=1e-6)
    with pytest.raises(ValueError):
        locusttools.predict_request("", images)


def _zeros_request(model_name: str) -> bytes:
    return locusttools.predict_request(model_name, np.zeros((1, 28, 28, 1)))


def test_write_grpc_locustfile_inits_gevent_before_any_channel_and_reports_calls(tmp_path):
    path = locusttools.write_grpc_locustfile(tmp_path / "g.py", b"\x0a\x01x", stages=[(3, 2)])
    text = path.read_text()
    compile(text, str(path), "exec")
    assert text.index("init_gevent()") < text.index("insecure_channel(")
    assert "METHOD = '/tensorflow.serving.PredictionService/Predict'" in text
    assert "REQUEST = b'\\nx01x'" not in text and "REQUEST = b'\\n\\x01x'" in text
    assert 'request_type="grpc"' in text and "events.request.fire(" in text
    assert "STAGES = [(3, 2)]" in text and "import tensorflow" not in text


@pytest.mark.parametrize("kwargs", [{"request": b""}, {"request": "text"}, {"method": "Predict"},
                                    {"stages": [(5, 1), (2, 3)]}])
def test_write_grpc_locustfile_rejects_bad_input(tmp_path, kwargs):
    with pytest.raises(ValueError):
        locusttools.write_grpc_locustfile(tmp_path / "g.py", **{"request": b"x", **kwargs})


@pytest.mark.parametrize("host", ["grpc://example.com:8500", "http://127.0.0.1.example.com:80",
                                  "127.0.0.1:8500", "ftp://127.0.0.1:21"])
def test_run_locust_accepts_only_loopback_http_or_grpc(tmp_path, host):
    with pytest.raises(ValueError, match="127.0.0.1"):
        locusttools.run_locust(tmp_path / "lf.py", host, tmp_path / "x")


def test_a_real_grpc_run_against_the_course_server(tmp_path, tiny_served_model):
    from helpers.serving import launcher

    good = locusttools.write_grpc_locustfile(tmp_path / "good.py", _zeros_request("clf"))
    wrong = locusttools.write_grpc_locustfile(tmp_path / "wrong.py", _zeros_request("no_such_model"))
    with launcher.ModelServer("clf", tiny_served_model) as server:
        target = f"grpc://{server.grpc_target}"
        good_run = locusttools.run_locust(good, target, tmp_path / "good", users=4, seconds=3)
        wrong_run = locusttools.run_locust(wrong, target, tmp_path / "wrong", users=1, seconds=2)
    ok, failed = locusttools.summary(good_run), locusttools.summary(wrong_run)
    assert ok["requests"] > 20 and ok["failures"] == 0 and 0 < ok["p50_ms"] <= ok["p99_ms"] < 1000
    stats = pd.read_csv(f"{good_run}_stats.csv")
    row = stats[stats["Name"] == "grpc predict"].iloc[0]
    assert row["Type"] == "grpc" and row["Average Content Size"] > 40      # ten probabilities, at least
    in_flight = row["Requests/s"] * row["Average Response Time"] / 1000      # Little's law
    assert in_flight > 2      # 4 users overlap; without init_gevent each call blocks the rest: <= 1
    assert failed["requests"] > 0 and failed["failures"] == failed["requests"]
    assert "NOT_FOUND" in locusttools.failures(wrong_run)["error"].iloc[0]
    assert locusttools.history(good_run)["users"].max() == 4
