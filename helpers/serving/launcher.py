"""Start the server as a subprocess from a notebook or a test, wait until it serves, always stop it.

    with launcher.ModelServer("baseline", base_path) as server:
        requests.post(server.rest_url + "/v1/models/baseline:predict", json=...)

The same class starts the real ``tensorflow_model_server`` binary where it is installed
(``binary=shutil.which("tensorflow_model_server")``): the flags it passes are TF Serving's.
A server is stopped by :meth:`ModelServer.stop`, the context manager, at interpreter exit, and,
if the parent process dies without any of those (a killed kernel), by the server's own
exit-with-parent watchdog.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

TF_SERVING_APT = """
REPO=http://storage.googleapis.com/tensorflow-serving-apt
echo "deb [arch=amd64] $REPO stable tensorflow-model-server tensorflow-model-server-universal" \\
  > /etc/apt/sources.list.d/tensorflow-serving.list
curl -fsSL $REPO/tensorflow-serving.release.pub.gpg | apt-key add -
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


class ModelServer:
    """``python -m helpers.serving`` in a subprocess on free loopback ports.

    ``extra_flags`` are passed on (e.g. ``["--enable_batching"]``). :meth:`start` waits until the
    model's status answers 200 (or raises with the server's log); :meth:`stop` sends SIGTERM and
    kills after ``stop_timeout_s``. Use it as a context manager so it stops on errors too.
    """

    def __init__(self, model_name: str, base_path: Path, extra_flags=(), start_timeout_s: float = 60,
                 stop_timeout_s: float = 15, token: str | None = None, binary: str | None = None):
        self.model_name, self.base_path = model_name, Path(base_path)
        self.rest_port, self.grpc_port = free_port(), free_port()
        self.extra_flags, self.token = list(extra_flags), token
        self.command = [binary] if binary else [sys.executable, "-m", "helpers.serving"]
        self.start_timeout_s, self.stop_timeout_s = start_timeout_s, stop_timeout_s
        self.process: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="model-server-", suffix=".log", delete=False)
        self.returncode: int | None = None

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def log_text(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def start(self) -> ModelServer:
        flags = [f"--model_name={self.model_name}", f"--model_base_path={self.base_path}",
                 f"--rest_api_port={self.rest_port}", f"--port={self.grpc_port}", *self.extra_flags]
        if self.token:
            token_file = Path(self._log.name).with_suffix(".token")
            token_file.write_text(self.token)
            token_file.chmod(0o600)
            flags.append(f"--auth_token_file={token_file}")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1",
               "HELPERS_SERVING_PARENT_PID": str(os.getpid())}
        self.process = subprocess.Popen([*self.command, *flags], stdout=self._log,
                                        stderr=subprocess.STDOUT, env=env)
        atexit.register(self.stop)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Model server exited with {self.process.returncode}:\n"
                                   f"{self.log_text()[-3000:]}")
            try:
                status = requests.get(f"{self.rest_url}/v1/models/{self.model_name}",
                                      headers=self.headers, timeout=1)
                if status.status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"Model server not ready after {self.start_timeout_s} s:\n"
                           f"{self.log_text()[-3000:]}")

    def stop(self) -> int | None:
        """SIGTERM, wait, SIGKILL if needed; returns the exit code."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process:
            self.returncode = self.process.returncode
            atexit.unregister(self.stop)
        return self.returncode

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
