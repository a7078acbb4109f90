"""Start the server as a subprocess from a notebook or a test, wait until it serves, always stop it.

    with launcher.ModelServer("baseline", base_path) as server:
        requests.post(server.rest_url + "/v1/models/baseline:predict", json=...)

The same class starts the real ``tensorflow_model_server`` binary where it is installed
(``binary=shutil.which("tensorflow_model_server")``): the flags it passes are TF Serving's.
A server is stopped by :meth:`ModelServer.stop`, the context manager, at interpreter exit, and,
if the parent process dies without any of those (a killed kernel), by the server's own
exit-with-parent watchdog (``python -m helpers.serving`` only; the real binary has none).
Each server keeps its log (and, until the server has read it, its token file, created with mode
0600) in a private temporary directory (mode 0700) that :meth:`ModelServer.stop` removes; a
start that fails stops the process and removes it too, and so does a background thread that
reaps the process as soon as it ends on its own (e.g. terminated by a kernel that shuts down).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

TF_SERVING_APT = """set -euo pipefail
REPO=https://storage.googleapis.com/tensorflow-serving-apt
KEYRING=/usr/share/keyrings/tensorflow-serving.gpg
curl -fsSL $REPO/tensorflow-serving.release.pub.gpg | gpg --batch --yes --dearmor -o $KEYRING
echo "deb [arch=amd64 signed-by=$KEYRING] $REPO stable" \\
  "tensorflow-model-server tensorflow-model-server-universal" \\
  > /etc/apt/sources.list.d/tensorflow-serving.list
apt-get update -qq && apt-get install -y -qq tensorflow-model-server
"""


def tf_serving_binary(install: bool = False) -> str | None:
    """Path of ``tensorflow_model_server`` if installed; with ``install``, first install it from
    Google's apt repository (TF_SERVING_APT, as https://www.tensorflow.org/tfx/serving/setup
    describes; needs root, as in Colab). ``None`` when it is not (and was not) installed."""
    if shutil.which("tensorflow_model_server") is None and install:
        subprocess.run(["bash", "-c", TF_SERVING_APT], check=True)
    return shutil.which("tensorflow_model_server")


def wait_for(condition, timeout_s: float = 30, what: str = "the condition") -> float:
    """Poll ``condition()`` every 0.1 s until it is true; return the seconds it took.

    Raises TimeoutError naming ``what`` after ``timeout_s``.
    """
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"Waited {timeout_s:g} s for {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _private_file(path: Path):
    """A new file open for binary writing, readable by its owner only from its creation on."""
    return os.fdopen(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "wb")


class ModelServer:
    """``python -m helpers.serving`` in a subprocess on free loopback ports.

    ``base_path`` becomes ``--model_name=<model_name> --model_base_path=<base_path>``; with
    ``base_path=None`` the models come from a ``--model_config_file`` in ``extra_flags`` and
    ``model_name`` names the one to wait for. ``extra_flags`` are passed on (e.g.
    ``["--enable_batching"]``). :meth:`start` waits until the model's status answers 200 (or
    raises with the server's log, having stopped the process); :meth:`stop` sends SIGTERM, kills
    after ``stop_timeout_s`` and removes the server's temporary directory (its log stays readable
    with :meth:`log_text`). Use it as a context manager so it stops on errors too.
    """

    def __init__(self, model_name: str, base_path: Path | None, extra_flags=(), start_timeout_s: float = 60,
                 stop_timeout_s: float = 15, token: str | None = None, binary: str | None = None):
        self.model_name, self.base_path = model_name, Path(base_path) if base_path else None
        self.rest_port, self.grpc_port = free_port(), free_port()
        self.extra_flags, self.token = list(extra_flags), token
        self.command = [binary] if binary else [sys.executable, "-m", "helpers.serving"]
        self.start_timeout_s, self.stop_timeout_s = start_timeout_s, stop_timeout_s
        self.process: subprocess.Popen | None = None
        self.directory: Path | None = None       # private temporary directory while started
        self.returncode: int | None = None
        self._log_text = ""
        self._cleanup_lock = threading.Lock()

    @property
    def rest_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the REST API."""
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        """``127.0.0.1:<port>`` of the gRPC API, for ``grpc.insecure_channel``."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def headers(self) -> dict:
        """The HTTP headers that authenticate a REST request (none without a token)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def grpc_metadata(self) -> tuple:
        """The metadata that authenticates a gRPC call (``stub.Predict(..., metadata=...)``)."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def available_versions(self, model: str | None = None) -> list[int]:
        """The versions of ``model`` (default: the one this server was started for) that TF Serving's
        model status API (``GET /v1/models/<model>``) reports ``AVAILABLE``, in increasing order."""
        import requests

        reply = requests.get(f"{self.rest_url}/v1/models/{model or self.model_name}", headers=self.headers,
                             timeout=10)
        reply.raise_for_status()
        return sorted(int(row["version"]) for row in reply.json()["model_version_status"]
                      if row["state"] == "AVAILABLE")

    def label_version(self, label: str, model: str | None = None) -> int | None:
        """The version that ``label`` points at (``GET /v1/models/<model>/labels/<label>/metadata``),
        or None while the server refuses the label (not assigned, or its version not loaded)."""
        import requests

        reply = requests.get(f"{self.rest_url}/v1/models/{model or self.model_name}/labels/{label}/metadata",
                             headers=self.headers, timeout=10)
        return int(reply.json()["model_spec"]["version"]) if reply.status_code == 200 else None

    def log_text(self) -> str:
        """What the server printed so far; still available after :meth:`stop`."""
        directory = self.directory
        if directory is not None:
            try:
                return (directory / "server.log").read_text(errors="replace")
            except FileNotFoundError:       # removed meanwhile: its text was kept first
                pass
        return self._log_text

    def start(self) -> ModelServer:
        """Start the process and wait until the model answers; on any failure, stop and re-raise."""
        if self.process and self.process.poll() is None:
            raise RuntimeError(f"Model server already running (pid {self.process.pid})")
        self.directory = Path(tempfile.mkdtemp(prefix="model-server-"))
        try:
            model = [f"--model_name={self.model_name}", f"--model_base_path={self.base_path}"]
            flags = [*(model if self.base_path else []), f"--rest_api_port={self.rest_port}",
                     f"--port={self.grpc_port}", *self.extra_flags]
            if self.token:
                token_file = self.directory / "token"
                with _private_file(token_file) as handle:
                    handle.write(self.token.encode())
                flags.append(f"--auth_token_file={token_file}")
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1",
                   "HELPERS_SERVING_PARENT_PID": str(os.getpid())}
            with _private_file(self.directory / "server.log") as log:
                self.process = subprocess.Popen([*self.command, *flags], stdout=log,
                                                stderr=subprocess.STDOUT, env=env)
            atexit.register(self.stop)
            threading.Thread(target=self._reap, args=(self.process, self.directory), daemon=True,
                             name=f"model-server-{self.process.pid}-reaper").start()
            self._wait_until_ready()
            if self.token:
                token_file.unlink(missing_ok=True)   # read at start-up: no copy stays on disk
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Model server exited with {self.process.returncode}:\n"
                                   f"{self.log_text()[-3000:]}")
            try:
                status = requests.get(f"{self.rest_url}/v1/models/{self.model_name}",
                                      headers=self.headers, timeout=1)
                if status.status_code == 200:
                    return
            except requests.RequestException:     # not listening yet, or too busy to answer
                pass
            time.sleep(0.2)
        raise TimeoutError(f"Model server not ready after {self.start_timeout_s} s:\n"
                           f"{self.log_text()[-3000:]}")

    def stop(self) -> int | None:
        """SIGTERM, wait, SIGKILL if needed; remove the temporary directory; return the exit code."""
        try:
            if self.process and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(self.stop_timeout_s)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(5)
            if self.process:
                self.returncode = self.process.returncode
        finally:
            atexit.unregister(self.stop)
            self._remove_directory(self.directory)
        return self.returncode

    def _reap(self, process: subprocess.Popen, directory: Path) -> None:
        """Wait for the process in the background and clean up as soon as it ends, however it ends.

        A Jupyter kernel that shuts down terminates its children and waits until none is left,
        zombies included: reaping at once lets it finish (and run ``atexit``) instead of being
        killed.
        """
        process.wait()
        self._remove_directory(directory)

    def _remove_directory(self, directory: Path | None) -> None:
        """Keep the log's text, then delete ``directory`` if it is still this server's."""
        with self._cleanup_lock:
            if directory is not None and directory == self.directory:
                self._log_text = self.log_text()
                shutil.rmtree(directory, ignore_errors=True)
                self.directory = None

    def __enter__(self) -> ModelServer:
        if self.process and self.process.poll() is None:
            return self                  # ``with ModelServer(...).start() as server:``
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def running(*servers: ModelServer):
    """Start ``servers`` side by side (their start-ups overlap) and stop every one of them when the
    block ends, also on errors; a failed start stops the others and is raised."""
    failures: list[BaseException] = []

    def start(server: ModelServer) -> None:
        try:
            server.start()
        except BaseException as error:  # noqa: BLE001 - raised below, in the caller's thread
            failures.append(error)

    threads = [threading.Thread(target=start, args=(server,), daemon=True) for server in servers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        yield servers
    finally:
        for server in servers:
            server.stop()
