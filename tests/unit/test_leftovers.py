"""The session-end check of the root conftest: a session that leaves a file in the temp folder or
a process running fails, naming it; a clean one passes. Each case runs a small pytest session in
a subprocess with a copy of the root conftest."""

import sys

import pytest

from helpers import env

CONFTEST = (env.course_root() / "conftest.py").read_text()


def _session(pytester, test_source: str):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")


@pytest.fixture
def quick_grace(monkeypatch):
    """A short grace period, and no third-party plugins (nbval's import alone takes seconds)."""
    monkeypatch.setenv("COURSE_LEFTOVER_GRACE_S", "0.5")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def test_a_clean_session_passes(pytester, quick_grace):
    result = _session(pytester, """
import subprocess, sys, tempfile

def test_cleans_up():
    with tempfile.TemporaryDirectory(prefix="course-") as folder:
        open(folder + "/x", "w").write("x")
    subprocess.run([sys.executable, "-c", "pass"], check=True)

def test_tmp_path_is_fine(tmp_path):
    (tmp_path / "kept by pytest").write_text("x")
""")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*2 passed*"])


def test_a_file_left_in_the_temp_folder_fails_the_session(pytester, quick_grace):
    result = _session(pytester, """
import tempfile

def test_leaks():
    tempfile.mkdtemp(prefix="model-server-")
    tempfile.mkstemp(prefix="course-", suffix=".log")

def test_later():
    pass
""")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_later*",
                                 "*left in the temp folder: course-*.log*",
                                 "*left in the temp folder: model-server-*",
                                 "*2 passed, 1 error*"])


def test_a_process_still_running_fails_the_session_and_is_stopped(pytester, quick_grace):
    result = _session(pytester, f"""
import subprocess

def test_starts_a_server():
    subprocess.Popen([{sys.executable!r}, "-c", "import time; time.sleep(60)  # course-leak-marker"])
""")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*still running: pid * *time.sleep(60)  # course-leak-marker*"])
    import psutil

    leaked = [p for p in psutil.process_iter(["cmdline"]) if "# course-leak-marker" in " ".join(
        p.info["cmdline"] or [])]
    assert not leaked, "the check stops what it reports"


def test_a_session_of_notebook_cells_only_is_checked_too(pytester, quick_grace):
    # No test function: the autouse fixture never runs, pytest_sessionfinish checks instead.
    pytester.makeconftest(CONFTEST + '''

class LeakingItem(pytest.Item):
    def runtest(self):
        import tempfile
        tempfile.mkdtemp(prefix="tmp-left-by-a-cell-")


class LeakingFile(pytest.File):
    def collect(self):
        yield LeakingItem.from_parent(self, name="cell")


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".cells":
        return LeakingFile.from_parent(parent, path=file_path)
''')
    pytester.makefile(".cells", notebook="x")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*leftovers*", "*left in the temp folder: tmp-left-by-a-cell-*"])
