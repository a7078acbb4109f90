"""Test-wide settings, and a check that nothing of the course outlives the test session.

Notebooks executed by nbval run in smoke mode and plots render off-screen. Where a private network
namespace is available (``tools.netns``: Linux as root, e.g. CI), the notebooks that must run in
one (Ray's) are left to the papermill test, which runs them inside it.

The session gets a temp folder of its own: ``tempfile.gettempdir()`` (``$TMPDIR``, inherited by
every kernel, server and subprocess the tests start) is a fresh ``course-tests-*`` folder inside
the system's. At the end of the session it must hold nothing but what is legitimately there
(:data:`LEGITIMATE`), and no child process of the session may still run after a grace period;
otherwise the session fails with the names and command lines. A private folder makes the check
exact where other work shares the machine: another program's files in ``/tmp`` are not counted,
and the course's are, whoever made them in the session. pytest's own ``tmp_path`` folders stay
in the system's temp folder as before (``PYTEST_DEBUG_TEMPROOT``).
"""

from __future__ import annotations

import atexit
import fnmatch
import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)   # tests/unit/test_leftovers.py runs sessions with this conftest

os.environ["COURSE_SMOKE"] = "1"      # inherited by the kernels nbval starts
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: Entries that may be in the temp folder when the session ends, and why.
LEGITIMATE = {
    "pytest-of-*": "pytest's own tmp_path folders (it keeps the last three sessions' on purpose)",
    "__autograph_generated_file*.py": "TensorFlow AutoGraph's generated sources; TensorFlow deletes "
                                      "them when the Python process that made them exits",
    ".ses": "ONNX Runtime's session-id file, written once when onnxruntime is imported and reused",
}
#: Seconds child processes get to exit after the last test (kernels and servers shut down
#: asynchronously); $COURSE_LEFTOVER_GRACE_S overrides it.
GRACE_S = float(os.environ.get("COURSE_LEFTOVER_GRACE_S", "10"))

SYSTEM_TEMP = Path(tempfile.gettempdir())
os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", str(SYSTEM_TEMP))
SESSION_TEMP = Path(tempfile.mkdtemp(prefix="course-tests-", dir=SYSTEM_TEMP))
os.environ["TMPDIR"] = str(SESSION_TEMP)
tempfile.tempdir = str(SESSION_TEMP)
atexit.register(shutil.rmtree, SESSION_TEMP, ignore_errors=True)   # e.g. after `pytest --help`
_BEFORE = frozenset(os.listdir(SESSION_TEMP))
_checked = False


def temp_leftovers(folder: Path = SESSION_TEMP, before: frozenset = _BEFORE) -> list[str]:
    """Entries of ``folder`` that were not there at the start and are not :data:`LEGITIMATE`."""
    return sorted(name for name in os.listdir(folder) if name not in before
                  and not any(fnmatch.fnmatch(name, pattern) for pattern in LEGITIMATE))


def surviving_children(grace_s: float = GRACE_S) -> list[str]:
    """This process's descendants still running after ``grace_s`` seconds, described.

    They are waited for (which also reaps the exited ones), then terminated so that a failed
    session leaves nothing behind either.
    """
    import psutil

    _, alive = psutil.wait_procs(psutil.Process().children(recursive=True), timeout=grace_s)
    described = []
    for process in alive:
        try:
            described.append(f"pid {process.pid}: {' '.join(process.cmdline())[:300]}")
            process.terminate()
        except psutil.NoSuchProcess:
            continue
    _, still = psutil.wait_procs(alive, timeout=3)
    for process in still:
        process.kill()
    return described


def leftover_problems() -> list[str]:
    """What the session leaves behind: files in its temp folder, child processes still running."""
    problems = [f"left in the temp folder: {name}" for name in temp_leftovers()]
    problems += [f"still running: {process}" for process in surviving_children()]
    return problems


def _report(problems: list[str]) -> str:
    return ("The test session leaves course files or processes behind (every file a helper, "
            "notebook or server makes in the temp folder must be removed by it, every process it "
            "starts must be stopped):\n  " + "\n  ".join(problems))


@pytest.fixture(scope="session", autouse=True)
def nothing_of_the_course_outlives_the_session():
    """After the last test: no new entry in the temp folder, no child process still running."""
    yield
    global _checked
    _checked = True
    problems = leftover_problems()
    if problems:
        pytest.fail(_report(problems), pytrace=False)


def pytest_collection_modifyitems(config, items):
    """Leave the notebooks that must run in a private network namespace (``tools.netns``) to the
    papermill test where such a namespace is available: nbval runs kernels from this process,
    which cannot move into one."""
    try:
        from tools import netns
    except ImportError:          # this file copied outside the course (tests/unit/test_leftovers.py)
        return
    if not netns.available():
        return
    isolated = [item for item in items
                if item.path.suffix == ".ipynb" and item.path.name in netns.ISOLATED_NOTEBOOKS]
    if isolated:
        config.hook.pytest_deselected(items=isolated)
        items[:] = [item for item in items if item not in isolated]


def pytest_sessionfinish(session, exitstatus):
    """Check sessions that ran no test function (nbval cells only), then remove the folder."""
    try:
        if not _checked and session.testscollected:
            problems = leftover_problems()
            if problems:
                reporter = session.config.pluginmanager.get_plugin("terminalreporter")
                if reporter is not None:
                    reporter.write_sep("=", "leftovers", red=True)
                    reporter.write_line(_report(problems))
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
    finally:
        shutil.rmtree(SESSION_TEMP, ignore_errors=True)
