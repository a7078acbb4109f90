"""ruff (pyproject.toml's rules) is clean over the Python code and over the notebooks' code cells."""

import json
import subprocess
import sys

import pytest

from helpers import env


def _ruff(*paths: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format=concise",
                           *paths], cwd=env.course_root(), capture_output=True, text=True)


def test_ruff_is_clean():
    result = _ruff("helpers", "tools", "tests", "conftest.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean_on_the_notebooks():
    """pyproject.toml includes ``*.ipynb``: the notebooks' code follows the same rules."""
    notebooks = sorted(p.name for p in (env.course_root() / "notebooks").glob("*.ipynb"))
    assert notebooks
    result = _ruff("notebooks")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("source, rule", [("import os\n", "F401"),
                                          ("import os, sys\n\nprint(os, sys)\n", "E401")])
def test_ruff_checks_notebook_cells(tmp_path, source, rule):
    """The notebook check is not vacuous: ruff reads code cells of an .ipynb with these settings."""
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
                           "execution_count": None}],
                "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "P"},
                             "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "99_try_things.ipynb"
    path.write_text(json.dumps(notebook))
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format=concise",
                             "--config", str(env.course_root() / "pyproject.toml"), str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "cell 1:" in result.stdout and rule in result.stdout, result.stdout
