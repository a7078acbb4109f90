import subprocess
import sys

from helpers import env


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "helpers", "tools", "tests",
                             "conftest.py"], cwd=env.course_root(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
