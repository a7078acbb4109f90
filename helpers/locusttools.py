"""Load tests with locust: write a locustfile, run it headless in a subprocess, read its CSVs.

    path = locusttools.write_locustfile(folder / "locustfile.py", "/predict", body,
                                        stages=[(10, 1), (40, 8)])
    run = locusttools.run_locust(path, "http://127.0.0.1:8000", folder / "run", users=8, seconds=40)
    locusttools.summary(run)          # requests, failures, rps, p50_ms, p99_ms from _stats.csv
    locusttools.history(run)          # one row per second: users, rps, p99 (_stats_history.csv)

    request = locusttools.predict_request("fashion", images[:1])     # a serialized PredictRequest
    grpc_file = locusttools.write_grpc_locustfile(folder / "grpc.py", request)
    locusttools.run_locust(grpc_file, "grpc://" + server.grpc_target, folder / "grpc", users=8, seconds=10)

locust is always a subprocess: importing it patches the standard library with gevent, which
breaks a process that already imported ssl or urllib3 (a notebook kernel). Users wait nothing
between requests (closed loop, as helpers.loadtest): ``users`` is the concurrency.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

_LOCUSTFILE = '''"""Written by helpers.locusttools.write_locustfile."""
from locust import HttpUser, LoadTestShape, constant, task

PATH = {path!r}
BODY = {body!r}
STAGES = {stages!r}   # (end second, users); None: the command line's --users


class ModelUser(HttpUser):
    wait_time = constant(0)

    @task
    def predict(self):
        self.client.post(PATH, data=BODY, headers={{"Content-Type": "application/json"}},
                         name="predict", timeout=30)


if STAGES:
    class Steps(LoadTestShape):
        def tick(self):
            now = self.get_run_time()
            for end, users in STAGES:
                if now < end:
                    return users, 1000   # spawn/stop at once: a step down is a step too
            return None
'''

_GRPC_LOCUSTFILE = '''"""Written by helpers.locusttools.write_grpc_locustfile."""
import time

import grpc
import grpc.experimental.gevent
from locust import LoadTestShape, User, constant, task

grpc.experimental.gevent.init_gevent()   # before any channel: else each call blocks gevent's loop

METHOD = {method!r}
REQUEST = {request!r}   # a serialized request: this process needs no TensorFlow
NAME = {name!r}
TIMEOUT_S = {timeout_s!r}
STAGES = {stages!r}   # (end second, users); None: the command line's --users


def _raw(data):
    return data


class GrpcUser(User):
    """One channel per user; every call reported to locust's events, so its CSVs hold it."""
    wait_time = constant(0)

    def on_start(self):
        self.channel = grpc.insecure_channel(self.host.split("://", 1)[-1])
        self.call = self.channel.unary_unary(METHOD, request_serializer=_raw, response_deserializer=_raw)

    def on_stop(self):
        self.channel.close()

    @task
    def predict(self):
        started, answer, error = time.perf_counter(), b"", None
        try:
            answer = self.call(REQUEST, timeout=TIMEOUT_S)
        except grpc.RpcError as failed:
            error = RuntimeError(f"{{failed.code().name}}: {{failed.details()}}")
        self.environment.events.request.fire(
            request_type="grpc", name=NAME, response_time=(time.perf_counter() - started) * 1000,
            response_length=len(answer), exception=error, context={{}})
''' + _LOCUSTFILE[_LOCUSTFILE.index("\n\nif STAGES:"):]


def _check_stages(stages) -> None:
    if stages:
        ends = [end for end, _ in stages]
        if ends != sorted(ends) or any(users < 0 for _, users in stages):
            raise ValueError(f"stages must have increasing end times and users >= 0: {stages}")


def write_locustfile(path: Path, request_path: str, body: bytes,
                     stages: list[tuple[float, int]] | None = None) -> Path:
    """Write a locustfile whose users POST ``body`` to ``request_path`` back to back; with
    ``stages`` (``(end_second, users)`` in increasing time), a load shape that holds each user
    count until its end second (users start or stop at once), then stops the test."""
    if not request_path.startswith("/"):
        raise ValueError(f"request_path must start with '/', got {request_path!r}")
    _check_stages(stages)
    path = Path(path)
    path.write_text(_LOCUSTFILE.format(path=request_path, body=body, stages=list(stages or [])))
    return path


def predict_request(model_name: str, images, input_name: str = "image",
                    signature_name: str = "serving_default") -> bytes:
    """A TF Serving ``PredictRequest`` for ``images`` (float32, one batch), serialized: the
    ``request`` that :func:`write_grpc_locustfile` embeds (what ``PredictionServiceStub.Predict``
    would send)."""
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    if not model_name:
        raise ValueError("model_name must not be empty")
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = model_name, signature_name
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(np.asarray(images, dtype="float32")))
    return request.SerializeToString()


PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"


def write_grpc_locustfile(path: Path, request: bytes, method: str = PREDICT_METHOD,
                          name: str = "grpc predict", stages: list[tuple[float, int]] | None = None,
                          timeout_s: float = 30) -> Path:
    """Write a locustfile whose users call the gRPC ``method`` (TF Serving's Predict by default,
    the path ``PredictionServiceStub.Predict`` calls) with ``request``, a serialized request
    (``predict_pb2.PredictRequest(...).SerializeToString()``), back to back, one channel per
    user, to the host ``grpc://127.0.0.1:<port>`` given to :func:`run_locust`. The file calls
    ``grpc.experimental.gevent.init_gevent()`` before any channel (without it each call blocks
    gevent's loop: one user at a time) and reports every call to locust's request event
    (``request_type="grpc"``, ``name``, time, response bytes; a failed call as ``CODE: details``),
    so the CSVs hold it. ``stages`` as in :func:`write_locustfile`."""
    if not isinstance(request, bytes) or not request:
        raise ValueError("request must be a serialized request (non-empty bytes): "
                         "predict_pb2.PredictRequest(...).SerializeToString()")
    if not method.startswith("/") or method.count("/") != 2:
        raise ValueError(f"method must be a gRPC path '/package.Service/Method', got {method!r}")
    _check_stages(stages)
    path = Path(path)
    path.write_text(_GRPC_LOCUSTFILE.format(method=method, request=request, name=name, timeout_s=timeout_s,
                                            stages=list(stages or [])))
    return path


def run_locust(locustfile: Path, host: str, csv_prefix: Path, users: int = 1, seconds: float = 5,
               timeout_s: float | None = None) -> Path:
    """Run locust headless (``--csv`` with ``--csv-full-history``) against ``host``
    (``http://127.0.0.1:<port>``, or ``grpc://127.0.0.1:<port>`` for a gRPC locustfile) for at
    most ``seconds`` with ``users`` users (a load shape in the locustfile overrides both); return
    the CSV prefix. Raises RuntimeError with locust's output if it fails to run (failed requests
    are not an error: they are in the CSVs)."""
    parsed = urlparse(host)
    if parsed.scheme not in ("http", "grpc") or parsed.hostname != "127.0.0.1":
        raise ValueError(f"load tests here target http:// or grpc:// 127.0.0.1 only, got {host!r}")
    if users < 1 or seconds <= 0:
        raise ValueError(f"need users >= 1 and seconds > 0, got {users}, {seconds}")
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host", host,
               "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{max(1, round(seconds))}s",
               "--csv", str(csv_prefix), "--csv-full-history", "--only-summary", "--loglevel", "WARNING",
               "--exit-code-on-error", "0", "--stop-timeout", "5"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s or seconds + 60)
    if done.returncode != 0 or not Path(f"{csv_prefix}_stats.csv").exists():
        raise RuntimeError(f"locust failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return Path(csv_prefix)


def summary(csv_prefix: Path) -> dict:
    """The whole run from ``<prefix>_stats.csv`` (the Aggregated row): requests, failures,
    rps, p50_ms, p99_ms."""
    stats = pd.read_csv(f"{csv_prefix}_stats.csv")
    row = stats[stats["Name"] == "Aggregated"].iloc[0]
    return {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
            "rps": float(row["Requests/s"]), "p50_ms": float(row["50%"]), "p99_ms": float(row["99%"])}


def history(csv_prefix: Path) -> pd.DataFrame:
    """Locust's per-second history (``<prefix>_stats_history.csv``, Aggregated rows) as columns
    ``time`` (Unix seconds), ``users``, ``rps``, ``failures_per_s``, ``p50_ms``, ``p99_ms``,
    ``requests``, ``failures`` (cumulative). ``rps`` and ``failures_per_s`` are computed from
    the cumulative counts between rows (locust's own per-row rate keeps its last value once
    requests stop); the percentiles are locust's recent-window ones, missing (NaN) in a row
    without requests."""
    raw = pd.read_csv(f"{csv_prefix}_stats_history.csv")
    raw = raw[raw["Name"] == "Aggregated"]
    table = pd.DataFrame({"time": raw["Timestamp"].astype(float), "users": raw["User Count"],
                          "requests": raw["Total Request Count"], "failures": raw["Total Failure Count"],
                          "p50_ms": pd.to_numeric(raw["50%"], errors="coerce"),
                          "p99_ms": pd.to_numeric(raw["99%"], errors="coerce")}).reset_index(drop=True)
    seconds = table["time"].diff().where(lambda d: d > 0)
    table["rps"] = (table["requests"].diff() / seconds).fillna(0.0)
    table["failures_per_s"] = (table["failures"].diff() / seconds).fillna(0.0)
    idle = table["rps"] <= 0
    table.loc[idle, ["p50_ms", "p99_ms"]] = float("nan")
    return table[["time", "users", "rps", "failures_per_s", "p50_ms", "p99_ms", "requests", "failures"]]


def failures(csv_prefix: Path) -> pd.DataFrame:
    """What failed, from ``<prefix>_failures.csv``: one row per distinct error, columns
    ``error`` and ``occurrences`` (empty when nothing failed)."""
    raw = pd.read_csv(f"{csv_prefix}_failures.csv")
    return pd.DataFrame({"error": raw["Error"].astype(str), "occurrences": raw["Occurrences"].astype(int)})
