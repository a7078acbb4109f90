"""Ray Serve on one machine, loopback only: start and always stop it, a model deployment with
batching and autoscaling, replica counts over time, and a replica to kill.

    with rayserve.running(workdir / "ray") as serve_url:        # Ray + Serve's HTTP proxy
        serve.run(rayserve.classifier_app(model_file, autoscaling), name="fashion", route_prefix="/fashion")
        with rayserve.ReplicaPoller("fashion", "Classifier") as poller:
            ...                                                 # load
        poller.frame()                                          # time, running, target

Ray is started with its node on 127.0.0.1, no dashboard, usage statistics off and its temporary
folder (sockets, logs) in a short private folder that :func:`running` removes; Serve's HTTP proxy
listens on 127.0.0.1. :func:`non_loopback_listeners` lists what Ray's processes listen on
beyond loopback (measured, not assumed); run the notebook in a private network namespace
(``unshare -n``) where that list is not empty.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time

import numpy as np
import pandas as pd

_TEMP_DIR: dict = {}       # the running Ray's temporary folder (its logs), set by running()
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_DEDUP_LOGS": "0"}


def _shutdown(temp_dir: str) -> None:
    """Stop Serve and Ray (if running) and remove ``temp_dir``; safe to call twice."""
    import ray
    from ray import serve

    if ray.is_initialized():            # serve.shutdown() would otherwise start a Ray of its own
        with contextlib.suppress(Exception):
            serve.shutdown()
        ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)
    _TEMP_DIR.pop("path", None)


@contextlib.contextmanager
def running(num_cpus: int = 2, http_port: int = 8000, quiet: bool = True):
    """Start Ray (local, 127.0.0.1, no dashboard) and Serve's HTTP proxy on
    ``127.0.0.1:http_port``; yield the proxy's URL; on exit (also after an error) shut Serve and
    Ray down and remove Ray's temporary folder. The same cleanup is registered with ``atexit``,
    so a kernel that exits without leaving the block (a failed cell) cleans up too. Serve's
    controller logs at INFO (its scaling decisions, :func:`scaling_decisions`), access logs off."""
    import ray
    from ray import serve

    os.environ.update(RAY_ENV)
    if quiet:
        logging.getLogger("ray.serve").setLevel(logging.WARNING)
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")      # short: Ray's socket paths are limited
    atexit.register(_shutdown, temp_dir)
    _TEMP_DIR["path"] = temp_dir
    try:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _temp_dir=temp_dir,
                 _node_ip_address="127.0.0.1", log_to_driver=not quiet, configure_logging=not quiet,
                 logging_level="ERROR" if quiet else "INFO")
        serve.start(http_options={"host": "127.0.0.1", "port": http_port},
                    logging_config={"log_level": "INFO", "enable_access_log": False})
        yield f"http://127.0.0.1:{http_port}"
    finally:
        _shutdown(temp_dir)
        atexit.unregister(_shutdown)


class BadRequest(ValueError):
    """A request the deployment refuses with HTTP 400 and this message (never a 500)."""


def parse_instances(payload, shape: tuple = (28, 28, 1)) -> np.ndarray:
    """The one image of a ``{"instances": [image]}`` request as float32 of shape ``(1, *shape)``.
    Raises :class:`BadRequest` naming what is wrong: not such a dict, not exactly one image, a
    wrong shape, non-numeric, NaN or infinite values."""
    wanted = f'send {{"instances": [one {"x".join(map(str, shape))} image]}}'
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not instances:
        raise BadRequest(wanted)
    if not isinstance(instances, list) or len(instances) != 1:
        count = len(instances) if isinstance(instances, list) else type(instances).__name__
        raise BadRequest(f"{wanted}: got {count} instead of a list of one")
    try:
        image = np.asarray(instances[0], dtype="float32")
    except (TypeError, ValueError) as error:        # ragged lists, strings, dicts
        raise BadRequest(f"{wanted}: not a numeric array ({error})") from None
    if image.shape != tuple(shape):
        raise BadRequest(f"{wanted}: got shape {'x'.join(map(str, image.shape)) or 'scalar'}")
    if not np.isfinite(image).all():
        raise BadRequest(f"{wanted}: NaN or infinite values")
    return image[None]


def predict_batch(model, images: list) -> list:
    """What one ``@serve.batch`` call computes: ``images`` (arrays of shape ``(1, ...)``, one per
    request) in one forward pass; one ``[probabilities]`` list per request, in order."""
    batch = np.concatenate([np.asarray(x, dtype="float32") for x in images])
    outputs = model(batch, training=False)
    outputs = outputs.numpy() if hasattr(outputs, "numpy") else np.asarray(outputs)    # a tf.Tensor, or not
    return [p.tolist() for p in outputs[:, None, :]]


class ClassifierReplica:
    """A Ray Serve replica's logic, without Ray: load the Keras model (``threads`` TensorFlow
    threads, in a process where TensorFlow has not run yet, as a replica's), answer a request's
    JSON with ``(status, body)``. :func:`classifier_app` wraps it in a deployment with
    ``@serve.batch``; a unit test calls it directly."""

    def __init__(self, path: str, threads: int):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import keras
        import tensorflow as tf

        with contextlib.suppress(RuntimeError):      # fixed once TF has run (a test's process)
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        self.model, self.version = keras.saving.load_model(path, compile=False), "?"
        self.shape = tuple(self.model.input_shape[1:])

    def reconfigure(self, config: dict) -> None:
        """Serve's ``user_config`` hook: the version the answers report."""
        self.version = config["version"]

    def predict_batch(self, images: list) -> list:
        """:func:`predict_batch` with this replica's model."""
        return predict_batch(self.model, images)

    async def respond(self, read_json, predict) -> tuple[int, dict]:
        """``(200, {"predictions": [...], "version": ...})``, or ``(400, {"error": ...})`` for a
        body that is not JSON or not one valid image; ``read_json`` and ``predict`` are
        coroutines (the request's ``json()``, the batched predict)."""
        try:
            image = parse_instances(await read_json(), self.shape)
        except (BadRequest, ValueError) as error:     # json.JSONDecodeError is a ValueError
            return 400, {"error": str(error) if isinstance(error, BadRequest) else f"not JSON: {error}"}
        return 200, {"predictions": await predict(image), "version": self.version}


def classifier_app(model_file: str, autoscaling_config: dict, max_batch_size: int = 16,
                   batch_wait_timeout_s: float = 0.005, threads: int = 1, version: str = "1",
                   num_cpus: float = 0.5, max_surge_percent: int = 100):
    """A Ray Serve application: a Keras model (``model_file``, loaded in every replica with
    ``threads`` TensorFlow threads) behind ``@serve.batch``, scaled by ``autoscaling_config``.
    It answers ``POST {"instances": [...]}`` with ``{"predictions": [...], "version": version}``
    and a bad request with 400 ``{"error": ...}`` (:class:`ClassifierReplica` holds the logic);
    ``version`` is passed as ``user_config``. A new model file is a rollout: with
    ``max_surge_percent`` > 0 Serve starts the replacements first and stops old replicas once they
    are ready (Ray 2.60's default, 0, stops old replicas before starting replacements); each replica
    reserves ``num_cpus`` so that the surge replicas fit beside the old ones."""
    if not autoscaling_config.get("max_replicas") or autoscaling_config.get("min_replicas", 1) < 0:
        raise ValueError(f"autoscaling_config needs max_replicas and min_replicas >= 0: {autoscaling_config}")
    from ray import serve

    @serve.deployment(autoscaling_config=autoscaling_config, ray_actor_options={"num_cpus": num_cpus},
                      max_ongoing_requests=2 * max_batch_size, graceful_shutdown_timeout_s=5,
                      max_surge_percent=max_surge_percent,
                      user_config={"version": version})
    class Classifier(ClassifierReplica):
        @serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=batch_wait_timeout_s)
        async def predict(self, images: list) -> list:
            return self.predict_batch(images)

        async def __call__(self, request):
            status, body = await self.respond(request.json, self.predict)
            if status == 200:
                return body
            from starlette.responses import JSONResponse

            return JSONResponse(body, status_code=status)

    return Classifier.bind(str(model_file), threads)


def replica_states(app: str, deployment: str) -> dict:
    """Replica counts by state (``RUNNING``, ``STARTING``, ``STOPPING``...) of one deployment,
    from ``serve.status()``; empty if the application does not exist (yet)."""
    from ray import serve

    application = serve.status().applications.get(app)
    if application is None or deployment not in application.deployments:
        return {}
    return {str(getattr(k, "value", k)): int(v)
            for k, v in application.deployments[deployment].replica_states.items()}


class ReplicaPoller:
    """A background thread that records ``serve.status()``'s replica counts every
    ``interval_s`` seconds (``time`` in Unix seconds, ``running``, ``starting``, ``stopping``);
    a context manager, stopped on exit."""

    def __init__(self, app: str, deployment: str, interval_s: float = 0.5):
        self.app, self.deployment, self.interval_s = app, deployment, interval_s
        self.rows: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                states = replica_states(self.app, self.deployment)
                self.rows.append({"time": time.time(), "running": states.get("RUNNING", 0),
                                  "starting": states.get("STARTING", 0),
                                  "stopping": states.get("STOPPING", 0)})
            self._stop.wait(self.interval_s)

    def __enter__(self) -> ReplicaPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def frame(self) -> pd.DataFrame:
        """The samples so far, one row each."""
        return pd.DataFrame(self.rows, columns=["time", "running", "starting", "stopping"])


def first_time(frame: pd.DataFrame, column: str, condition, after: float) -> float | None:
    """Seconds from ``after`` (Unix time) to the first sample at or after it whose ``column``
    satisfies ``condition`` (a callable on the value); ``None`` if none does."""
    later = frame[(frame["time"] >= after) & frame[column].map(condition)]
    return None if later.empty else float(later["time"].iloc[0] - after)


def replica_actor_names(app: str, deployment: str) -> list[str]:
    """Names of the live replica actors of one deployment (Ray names them
    ``SERVE_REPLICA::<app>#<deployment>#<id>`` in the ``serve`` namespace)."""
    import ray

    prefix = f"SERVE_REPLICA::{app}#{deployment}#"
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                  if a["namespace"] == "serve" and a["name"].startswith(prefix))


def kill_one_replica(app: str, deployment: str) -> str:
    """Kill one replica actor of the deployment at once (``ray.kill``, as a crashed process
    would die); return its name. Serve's controller notices and starts a replacement."""
    import ray

    names = replica_actor_names(app, deployment)
    if not names:
        raise RuntimeError(f"no live replica of {app}/{deployment}")
    ray.kill(ray.get_actor(names[0], namespace="serve"), no_restart=True)
    return names[0]


def network_interfaces(net_dev: str = "/proc/self/net/dev") -> list[str]:
    """The network interfaces of this process's network namespace (Linux: ``/proc/self/net/dev``;
    ``/sys/class/net`` would show the namespace sysfs was mounted in); empty where unreadable.
    Only ``lo`` means a private network namespace (``unshare -n``): Ray's listeners on all
    interfaces then reach nothing outside this machine."""
    with contextlib.suppress(OSError):
        with open(net_dev) as table:
            return sorted(line.split(":")[0].strip() for line in table if ":" in line)
    return []


def non_loopback_listeners(root_pid: int | None = None) -> list[tuple[str, str, int]]:
    """TCP/UDP sockets in LISTEN state (TCP) or bound (UDP) on an address other than loopback,
    opened by the processes below ``root_pid`` (default: this process; Ray's GCS, raylet and
    workers are its descendants): ``(process name, address, port)``, sorted."""
    import psutil

    found = set()
    for proc in psutil.Process(root_pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            for conn in proc.net_connections(kind="inet"):
                if not conn.laddr or (conn.type == 1 and conn.status != psutil.CONN_LISTEN):
                    continue
                if conn.laddr.ip.startswith("127.") or conn.laddr.ip in ("::1", "::ffff:127.0.0.1"):
                    continue
                if conn.type == 1 or not conn.raddr:
                    found.add((proc.name(), conn.laddr.ip, int(conn.laddr.port)))
    return sorted(found)


_DECISION = re.compile(r"(Upscaling|Downscaling) .*? from (\d+) to (\d+) replicas\. Current ongoing "
                       r"requests: ([\d.]+), current running replicas: (\d+)")


def scaling_decisions(lines: list[str] | None = None) -> pd.DataFrame:
    """Serve's controller's autoscaling decisions, from its log lines (default: the controller
    log of the Ray that :func:`running` started): columns ``direction`` (up/down), ``from``,
    ``to``, ``ongoing`` (the total ongoing requests the decision used), ``running`` (replicas
    RUNNING then). A repeated line (the same decision in two log files) counts once."""
    if lines is None:
        import glob

        lines = []
        pattern = os.path.join(_TEMP_DIR.get("path", "/nonexistent"), "session_*", "logs", "serve",
                               "controller_*.log")
        for path in sorted({os.path.realpath(p) for p in glob.glob(pattern)}):   # session_latest: a link
            with open(path, errors="replace") as log:
                lines.extend(log)
    lines = list(dict.fromkeys(line.strip() for line in lines))   # a line (with its time) once
    rows = [{"direction": "up" if m[1] == "Upscaling" else "down", "from": int(m[2]), "to": int(m[3]),
             "ongoing": float(m[4]), "running": int(m[5])}
            for m in (_DECISION.search(line) for line in lines) if m]
    return pd.DataFrame(rows, columns=["direction", "from", "to", "ongoing", "running"])


def ceil_div(total: float, target: float) -> int:
    """``ceil(total / target)``: the replica count a load of ``total`` needs before any clamping."""
    if target <= 0:
        raise ValueError(f"target must be > 0, got {target}")
    return math.ceil(total / target)
