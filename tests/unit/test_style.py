import shutil
import subprocess

import pytest

from helpers import env


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
def test_ruff_is_clean():
    root = env.course_root()
    result = subprocess.run(["ruff", "check", "helpers", "tools", "tests", "conftest.py"],
                            cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
