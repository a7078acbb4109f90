"""launcher.ModelServer: what it leaves on disk, failed starts, and that a server never outlives
the process (a script, a notebook kernel) that started it."""

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
import requests
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from helpers import env
from helpers.serving import launcher

TIMEOUT = 30
STOPS_WITHIN_S = 15      # the watchdog polls every second; a loaded 2-core machine is slow to exit


@pytest.fixture(scope="module")
def base(tiny_served_model):
    return tiny_served_model


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """A folder that receives everything ``tempfile`` creates in this process during the test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def everything_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def test_a_stopped_server_leaves_nothing_on_disk_and_its_token_is_never_readable_by_others(
        base, private_tmp):
    server = launcher.ModelServer("clf", base, ["--port=0"], token="tok-123456")
    umask = os.umask(0)                 # the most permissive umask: modes must not rely on it
    try:
        server.start()
    finally:
        os.umask(umask)
    with server:
        assert everything_under(private_tmp) == [server.directory, server.directory / "server.log"]
        assert stat.S_IMODE(server.directory.stat().st_mode) == 0o700
        assert stat.S_IMODE((server.directory / "server.log").stat().st_mode) == 0o600
        reply = requests.get(f"{server.rest_url}/v1/models/clf", headers=server.headers, timeout=TIMEOUT)
        assert reply.status_code == 200                # the token was read before it was removed
    assert everything_under(private_tmp) == []
    assert server.returncode == 0 and "stopped cleanly" in server.log_text()


def test_the_token_file_is_created_private(base, private_tmp, monkeypatch):
    """While it exists (until the server has read it), the token file is 0600 in a 0700 folder."""
    seen = {}

    def ready_check(url, headers=None, timeout=None):
        (token_file,) = [path for path in everything_under(private_tmp) if path.name == "token"]
        seen["file"] = stat.S_IMODE(token_file.stat().st_mode)
        seen["folder"] = stat.S_IMODE(token_file.parent.stat().st_mode)
        seen["text"] = token_file.read_text()
        raise KeyboardInterrupt                       # enough: stop the start here

    monkeypatch.setattr(launcher.requests, "get", ready_check)
    umask = os.umask(0)
    try:
        with pytest.raises(KeyboardInterrupt):
            launcher.ModelServer("clf", base, ["--port=0"], token="tok-123456").start()
    finally:
        os.umask(umask)
    assert seen == {"file": 0o600, "folder": 0o700, "text": "tok-123456"}
    assert everything_under(private_tmp) == []


def failing_health_check(error):
    def check(url, headers=None, timeout=None):
        raise error
    return check


@pytest.mark.parametrize("failure", ["no version", "health check times out", "interrupted"])
def test_a_start_that_fails_leaves_no_process_and_no_files(base, tmp_path, private_tmp, monkeypatch,
                                                          failure):
    path, expected = base, TimeoutError
    if failure == "no version":
        path, expected = tmp_path / "empty", RuntimeError
        path.mkdir()
    elif failure == "health check times out":
        monkeypatch.setattr(launcher.requests, "get", failing_health_check(requests.ReadTimeout("slow")))
    else:
        monkeypatch.setattr(launcher.requests, "get", failing_health_check(KeyboardInterrupt()))
        expected = KeyboardInterrupt
    server = launcher.ModelServer("clf", path, ["--port=0"], token="tok-123456",
                                  start_timeout_s=TIMEOUT if failure == "no version" else 3)
    with pytest.raises(expected):
        server.start()
    assert server.process is not None and server.process.poll() is not None, "the server still runs"
    assert everything_under(private_tmp) == []
    if failure == "no version":
        assert "no loadable version" in server.log_text()


PARENT_ENDINGS = {   # how the parent ends: killed (no atexit, no context manager), or an error
    "SIGKILL": "os.kill(os.getpid(), signal.SIGKILL)",
    "uncaught exception": "raise RuntimeError('a cell failed')",
}


@pytest.mark.parametrize("ending", PARENT_ENDINGS)
def test_a_server_stops_within_seconds_when_the_process_that_started_it_ends(base, tmp_path, ending):
    pid_file, parent_tmp = tmp_path / "server.pid", tmp_path / "parent-tmp"
    parent_tmp.mkdir()
    parent = (f"import os, signal\nfrom helpers.serving import launcher\n"
              f"server = launcher.ModelServer('clf', {str(base)!r}, ['--port=0']).start()\n"
              f"open({str(pid_file)!r}, 'w').write(str(server.process.pid))\n"
              f"{PARENT_ENDINGS[ending]}\n")
    ended = subprocess.run([sys.executable, "-c", parent], cwd=env.course_root(), capture_output=True,
                           text=True, timeout=TIMEOUT * 2, env={**os.environ, "TMPDIR": str(parent_tmp)})
    assert ended.returncode != 0
    pid = int(pid_file.read_text())
    launcher.wait_for(lambda: gone(pid), STOPS_WITHIN_S, f"the server (pid {pid}) to stop")
    if ending == "uncaught exception":              # stopped by atexit: nothing left behind
        assert list(parent_tmp.iterdir()) == []
    else:                                           # stopped by itself: the log stays, no token
        assert [path.name for path in parent_tmp.rglob("*") if path.is_file()] == ["server.log"]


@pytest.mark.parametrize("shutdown", ["graceful", "immediate"])
def test_a_notebook_cell_that_fails_between_start_and_stop_still_stops_the_server(
        base, tmp_path, monkeypatch, shutdown):
    """Notebook 11's pattern under papermill (graceful kernel shutdown) and nbval (immediate)."""
    pid_file = tmp_path / "server.pid"
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in [
        "import contextlib\nfrom helpers.serving import launcher\nresources = contextlib.ExitStack()\n"
        f"server = resources.enter_context(launcher.ModelServer('clf', {str(base)!r}, ['--port=0']))\n"
        f"open({str(pid_file)!r}, 'w').write(str(server.process.pid))",
        "raise RuntimeError('a cell between start and stop fails')",
        "resources.close()"]])
    client = NotebookClient(notebook, kernel_name="python3", timeout=TIMEOUT * 2, shutdown_kernel=shutdown,
                            resources={"metadata": {"path": str(env.course_root())}})
    with pytest.raises(CellExecutionError, match="a cell between start and stop fails"):
        client.execute()
    pid = int(pid_file.read_text())
    launcher.wait_for(lambda: gone(pid), STOPS_WITHIN_S, f"the server (pid {pid}) to stop")
    if shutdown == "graceful":                     # the kernel's atexit stopped it and cleaned up
        assert not list(tmp_path.glob("model-server-*"))


def test_running_starts_servers_side_by_side_and_stops_them_all(base, tmp_path):
    first, second = (launcher.ModelServer("clf", base, ["--port=0"]) for _ in range(2))
    with launcher.running(first, second) as both:
        assert both == (first, second)
        for server in both:
            assert requests.get(f"{server.rest_url}/v1/models/clf", timeout=TIMEOUT).status_code == 200
    assert first.returncode == 0 and second.returncode == 0
    broken = launcher.ModelServer("clf", tmp_path, ["--port=0"], start_timeout_s=TIMEOUT)   # no version
    healthy = launcher.ModelServer("clf", base, ["--port=0"])
    with pytest.raises(RuntimeError, match="no loadable version"):
        with launcher.running(healthy, broken):
            pass
    assert healthy.process.poll() is not None and healthy.directory is None


def test_available_versions_and_label_version_read_the_servers_own_answers(base, tmp_path):
    import shutil

    from helpers.serving import config

    models = tmp_path / "clf"
    shutil.copytree(base, models)
    shutil.copytree(models / "1", models / "2")
    config_file = tmp_path / "models.config"
    config_file.write_text(config.model_config_text([{"name": "clf", "base_path": models, "policy": [1, 2],
                                                      "labels": {"stable": 2}}]))
    flags = [f"--model_config_file={config_file}", "--port=0",
             "--allow_version_labels_for_unavailable_models"]       # label version 2 before it loads
    with launcher.ModelServer("clf", None, flags) as server:
        launcher.wait_for(lambda: server.available_versions() == [1, 2], TIMEOUT, "both versions")
        assert server.label_version("stable") == 2
        assert server.label_version("canary") is None                 # never assigned: refused
        assert server.label_version("stable", model="other") is None  # no such model
        with pytest.raises(requests.HTTPError):
            server.available_versions("other")
