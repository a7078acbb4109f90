"""Start-up: TF Serving's flags, model loading, gc.freeze, REST + gRPC, clean shutdown.

Flags follow ``tensorflow_model_server`` where it has them (``--model_name``,
``--model_base_path``, ``--rest_api_port``, ``--port``, ``--enable_batching``,
``--batching_parameters_file``, ``--file_system_poll_wait_seconds``); the rest are this server's
own (``--host``, ``--enable_monitoring``, ``--max_request_bytes``, ``--auth_token_file``,
``--version_labels``, ``--gc_freeze``). It binds 127.0.0.1 unless told otherwise: put TLS
termination and authentication of the outside world in front of it (a reverse proxy, an
ingress), never expose it bare.

``--auth_token_file``: every REST request under ``/v1/`` must send ``Authorization: Bearer
<token>`` and every gRPC call the metadata ``authorization: Bearer <token>`` (401 /
UNAUTHENTICATED otherwise); an empty file is refused at start-up. ``/monitoring/prometheus/metrics``
stays open on purpose: a Prometheus scraper usually has no token, and the metrics hold counts and
timings only, no inputs or predictions. Keep the port private (as for the rest of the server) if
even those must not be seen.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger("helpers.serving")
PARENT_PID_VARIABLE = "HELPERS_SERVING_PARENT_PID"


def _exit_with_parent(parent_pid: str | None, poll_s: float = 1.0) -> None:
    """If started by a notebook or a test (``parent_pid`` set), stop when that process is gone.

    A kernel that is killed cannot stop its children; this watchdog makes sure no orphaned
    server keeps a port and the CPU busy. It sends this process SIGTERM: the normal clean stop.
    """
    if not parent_pid:
        return

    def watch():
        while os.getppid() == int(parent_pid):
            time.sleep(poll_s)
        log.warning("parent process %s is gone: stopping", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _flag_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_flags(argv=None) -> argparse.Namespace:
    """The command line's flags (see the module docstring); exits with a usage error if wrong."""
    parser = argparse.ArgumentParser(prog="python -m helpers.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_base_path", required=True, type=Path)
    parser.add_argument("--rest_api_port", type=int, default=8501, help="0 disables REST")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port; 0 disables gRPC")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--enable_batching", nargs="?", const=True, default=False, type=_flag_bool)
    parser.add_argument("--batching_parameters_file", type=Path)
    parser.add_argument("--enable_monitoring", nargs="?", const=True, default=False, type=_flag_bool,
                        help="serve /monitoring/prometheus/metrics (open even with --auth_token_file)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0)
    parser.add_argument("--max_request_bytes", type=int, default=10 * 1024 * 1024)
    parser.add_argument("--auth_token_file", type=Path,
                        help="file holding a bearer token that every REST /v1 request "
                             "('Authorization: Bearer <token>') and every gRPC call (metadata "
                             "'authorization: Bearer <token>') must send; "
                             "/monitoring/prometheus/metrics stays open (counts and timings only)")
    parser.add_argument("--version_labels", default="",
                        help="e.g. stable=1,canary=2 (TF Serving sets labels in its model config)")
    parser.add_argument("--gc_freeze", type=_flag_bool, default=True,
                        help="move everything loaded so far out of the garbage collector's reach")
    flags = parser.parse_args(argv)
    if flags.batching_parameters_file and not flags.enable_batching:
        parser.error("--batching_parameters_file needs --enable_batching")
    return flags


def parse_labels(text: str) -> dict[str, int]:
    """``--version_labels``: ``"stable=1,canary=2"`` → ``{"stable": 1, "canary": 2}``."""
    labels = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        label, _, version = item.partition("=")
        if not (label and version.isdigit()):
            raise ValueError(f"--version_labels: expected label=version, got {item!r}")
        labels[label] = int(version)
    return labels


def _uvicorn_server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM after its shutdown, which would skip our own clean-up."""

        @contextlib.contextmanager
        def capture_signals(self):
            yield

    return Server


def main(argv=None) -> int:
    """Run the server until SIGTERM or SIGINT; returns the exit code (0 after a clean stop)."""
    flags = parse_flags(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from helpers.serving import auth, batching, grpc_service, metrics, rest
    from helpers.serving.models import ModelManager

    try:
        token = auth.read_token(flags.auth_token_file) if flags.auth_token_file else None
    except (OSError, ValueError) as error:
        log.error("%s", error)
        return 2
    _Server = _uvicorn_server_class()
    manager = ModelManager(flags.model_name, flags.model_base_path, parse_labels(flags.version_labels))
    manager.refresh()
    if not manager.versions:
        log.error("no loadable version under %s (expected <version>/saved_model.pb)",
                  flags.model_base_path)
        return 2
    server_metrics = metrics.ServerMetrics() if flags.enable_monitoring else None
    batcher = None
    if flags.enable_batching:
        batcher = batching.Batcher(batching.read_batching_parameters(flags.batching_parameters_file),
                                   on_batch=server_metrics.observe_batch if server_metrics else None)
    options = rest.Options(flags.max_request_bytes, token, batcher, server_metrics)
    if flags.gc_freeze:
        gc.collect()
        gc.freeze()      # the loaded model's objects are never scanned again by full collections
    manager.start_polling(flags.file_system_poll_wait_seconds)
    _exit_with_parent(os.environ.get(PARENT_PID_VARIABLE))

    grpc_server = None
    if flags.port:
        grpc_server = grpc_service.create_server(manager, flags.port, flags.host, batcher,
                                                 server_metrics, flags.max_request_bytes, token=token)
        grpc_server.start()
        log.info("gRPC on %s:%d", flags.host, flags.port)
    stopped = threading.Event()
    if flags.rest_api_port:
        import uvicorn

        config = uvicorn.Config(rest.create_app(manager, options), host=flags.host,
                                port=flags.rest_api_port, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=10)
        log.info("REST on %s:%d, model %s versions %s", flags.host, flags.rest_api_port,
                 flags.model_name, manager.versions)
        server = _Server(config)
        for sig in (signal.SIGTERM, signal.SIGINT):   # graceful: finish in-flight requests, then return
            signal.signal(sig, lambda *_: setattr(server, "should_exit", True))
        server.run()
    else:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopped.set())
        stopped.wait()
    if grpc_server:
        grpc_server.stop(grace=5).wait()
    if batcher:
        batcher.stop()
    manager.stop()
    log.info("stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
