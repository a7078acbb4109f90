"""Start-up: TF Serving's flags, model loading, gc.freeze, REST + gRPC, clean shutdown.

Flags follow ``tensorflow_model_server`` (``model_servers/main.cc``) where it has them:
``--model_name``, ``--model_base_path`` (one model, the latest version), or
``--model_config_file`` (a text ``ModelServerConfig``: several models, version policies,
labels; re-read every ``--model_config_file_poll_wait_seconds``, 0: never) and
``--allow_version_labels_for_unavailable_models``; ``--rest_api_port``, ``--port``,
``--enable_batching``, ``--batching_parameters_file``, ``--file_system_poll_wait_seconds``,
``--enable_model_warmup`` (default true), ``--num_request_iterations_for_warmup``,
``--monitoring_config_file``, ``--ssl_config_file`` (TLS on gRPC, optionally with client
certificates). The rest are this server's own: ``--host``, ``--enable_monitoring`` (Prometheus
at ``/monitoring/prometheus/metrics`` without a monitoring file), ``--max_request_bytes``,
``--auth_token_file``, ``--gc_freeze``. It binds 127.0.0.1 unless told otherwise: put TLS
termination for REST and authentication of the outside world in front of it (a reverse proxy,
an ingress), never expose it bare.

``--auth_token_file``: every REST request under ``/v1/`` must send ``Authorization: Bearer
<token>`` and every gRPC call the metadata ``authorization: Bearer <token>`` (401 /
UNAUTHENTICATED otherwise); an empty file is refused at start-up. The Prometheus route stays
open on purpose: a Prometheus scraper usually has no token, and the metrics hold counts and
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
    switch = {"nargs": "?", "const": True, "type": _flag_bool}
    parser.add_argument("--model_name", default="default")
    parser.add_argument("--model_base_path", type=Path)
    parser.add_argument("--model_config_file", type=Path,
                        help="a text ModelServerConfig; --model_name and --model_base_path are then ignored")
    parser.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0,
                        help="re-read --model_config_file this often (0: read it once)")
    parser.add_argument("--allow_version_labels_for_unavailable_models", default=False, **switch)
    parser.add_argument("--rest_api_port", type=int, default=8501, help="0 disables REST")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port; 0 disables gRPC")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--enable_batching", default=False, **switch)
    parser.add_argument("--batching_parameters_file", type=Path)
    parser.add_argument("--enable_model_warmup", default=True, **switch,
                        help="replay <version>/assets.extra/tf_serving_warmup_requests when loading")
    parser.add_argument("--num_request_iterations_for_warmup", type=int, default=1)
    parser.add_argument("--monitoring_config_file", type=Path,
                        help="a text MonitoringConfig: prometheus_config { enable: true path: ... }")
    parser.add_argument("--enable_monitoring", default=False, **switch,
                        help="serve /monitoring/prometheus/metrics (open even with --auth_token_file)")
    parser.add_argument("--ssl_config_file", type=Path, help="a text SSLConfig: TLS on the gRPC port")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0)
    parser.add_argument("--max_request_bytes", type=int, default=10 * 1024 * 1024)
    parser.add_argument("--auth_token_file", type=Path,
                        help="file holding a bearer token that every REST /v1 request "
                             "('Authorization: Bearer <token>') and every gRPC call (metadata "
                             "'authorization: Bearer <token>') must send; "
                             "/monitoring/prometheus/metrics stays open (counts and timings only)")
    parser.add_argument("--gc_freeze", type=_flag_bool, default=True,
                        help="move everything loaded so far out of the garbage collector's reach")
    flags = parser.parse_args(argv)
    if flags.batching_parameters_file and not flags.enable_batching:
        parser.error("--batching_parameters_file needs --enable_batching")
    if not (flags.model_config_file or flags.model_base_path):
        parser.error("give --model_base_path (with --model_name) or --model_config_file")
    return flags


def initial_config(flags: argparse.Namespace):
    """The ``ModelServerConfig`` to start with: the file's, else one model from the flags."""
    from helpers.serving import config

    if flags.model_config_file:
        return config.read_model_server_config(flags.model_config_file)
    return config.single_model_config(flags.model_name, flags.model_base_path)


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
    from helpers.serving import auth, batching, config, grpc_service, metrics, rest
    from helpers.serving.errors import ServingError
    from helpers.serving.models import ModelManager

    try:
        token = auth.read_token(flags.auth_token_file) if flags.auth_token_file else None
        ssl_config = config.read_ssl_config(flags.ssl_config_file) if flags.ssl_config_file else None
        monitoring = (config.read_monitoring_config(flags.monitoring_config_file).prometheus_config
                      if flags.monitoring_config_file else None)
        model_config = initial_config(flags)
    except (OSError, ValueError) as error:
        log.error("%s", error)
        return 2
    _Server = _uvicorn_server_class()
    manager = ModelManager(flags.num_request_iterations_for_warmup if flags.enable_model_warmup else 0,
                           flags.allow_version_labels_for_unavailable_models)
    try:
        manager.apply_config(model_config)
    except ServingError as error:
        log.error("%s", error.message)
        return 2
    for model in model_config.model_config_list.config:
        if not manager.versions(model.name):
            log.error("no loadable version of model %s under %s (expected <version>/saved_model.pb)",
                      model.name, model.base_path)
            return 2
    server_metrics = (metrics.ServerMetrics() if flags.enable_monitoring or (monitoring and monitoring.enable)
                      else None)
    batcher = None
    if flags.enable_batching:
        batcher = batching.Batcher(batching.read_batching_parameters(flags.batching_parameters_file),
                                   on_batch=server_metrics.observe_batch if server_metrics else None)
    options = rest.Options(flags.max_request_bytes, token, batcher, server_metrics,
                           (monitoring.path if monitoring else "") or config.PROMETHEUS_PATH)
    if flags.gc_freeze:
        gc.collect()
        gc.freeze()      # the loaded model's objects are never scanned again by full collections
    manager.start_polling(flags.file_system_poll_wait_seconds, flags.model_config_file,
                          flags.model_config_file_poll_wait_seconds)
    _exit_with_parent(os.environ.get(PARENT_PID_VARIABLE))

    grpc_server = None
    if flags.port:
        grpc_server = grpc_service.create_server(manager, flags.port, flags.host, batcher,
                                                 server_metrics, flags.max_request_bytes, token=token,
                                                 ssl_config=ssl_config)
        grpc_server.start()
        log.info("gRPC on %s:%d%s", flags.host, flags.port, " (TLS)" if ssl_config else "")
    stopped = threading.Event()
    if flags.rest_api_port:
        import uvicorn

        config = uvicorn.Config(rest.create_app(manager, options), host=flags.host,
                                port=flags.rest_api_port, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=10)
        log.info("REST on %s:%d, serving %s", flags.host, flags.rest_api_port,
                 {name: manager.versions(name) for name in manager.names})
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
