"""Notebook code hashing, shared by the results writer, the runner and the lint.

The hash covers the source of every code cell except papermill's injected parameters, so it
changes exactly when the code that produced a notebook's outputs changes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

INJECTED_TAG = "injected-parameters"
STAMP_KEY = "course"


def read_notebook(path: Path) -> dict:
    """Read a notebook as JSON, naming the file when it is missing or not valid JSON."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No notebook at {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid notebook JSON: {exc}") from exc


def cell_source(cell: dict) -> str:
    """A cell's source as one string (notebooks store it as a string or a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def code_cells(notebook: dict) -> list[dict]:
    """The notebook's code cells, without papermill's injected-parameters cell."""
    return [c for c in notebook.get("cells", []) if c.get("cell_type") == "code"
            and INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]


def code_hash(notebook: dict | Path) -> str:
    """SHA-256 (first 16 hex digits) of the notebook's code cells, line endings normalised."""
    if not isinstance(notebook, dict):
        notebook = read_notebook(notebook)
    digest = hashlib.sha256()
    for cell in code_cells(notebook):
        digest.update(cell_source(cell).replace("\r\n", "\n").strip().encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


def stamp(notebook: dict) -> dict | None:
    """The runner's stamp in a notebook's metadata (code hash, mode, runtime), if any."""
    return notebook.get("metadata", {}).get(STAMP_KEY)


# The setup cell, identical in every notebook except the KERAS value ("3" or "2").
# The lint compares each notebook's first code cell with this text. In Colab it clones the
# course (or updates an existing clone) and puts it on PYTHONPATH too, so that processes a
# notebook starts (the model server, ...) import the helpers as the kernel does.
SETUP_CELL = '''\
# Setup: identical in every notebook except KERAS (the lint checks it). See CONTRIBUTING.md.
KERAS = "{keras}"  # "3": Keras 3 (`import keras`); "2": tf_keras, which TF Model Optimization needs
import os
import subprocess
import sys

COURSE_REPO = os.environ.get("COURSE_REPO",
                             "https://github.com/{github_repo}.git")
COURSE_BRANCH = os.environ.get("COURSE_BRANCH", "{branch}")
if "google.colab" in sys.modules:  # Colab: fetch the course's helpers and data (or update them)
    COURSE_DIR = os.environ.get("COURSE_DIR", "/content/course")
    fresh = not os.path.isdir(COURSE_DIR)
    git = (["git", "clone", "--depth=1", "--branch", COURSE_BRANCH, COURSE_REPO, COURSE_DIR] if fresh
           else ["git", "-C", COURSE_DIR, "pull", "--ff-only", "--quiet"])
    done = subprocess.run(git, capture_output=True, text=True)
    if done.returncode and fresh:
        raise RuntimeError(f"Could not clone the course ({{' '.join(git)}}):\\n{{done.stderr}}\\n"
                           "Set COURSE_REPO (and COURSE_BRANCH) to a reachable copy, then rerun.")
    if done.returncode:
        print(f"Note: could not update {{COURSE_DIR}}, using it as it is: {{done.stderr.strip()}}")
    if COURSE_DIR not in sys.path:
        sys.path.insert(0, COURSE_DIR)
        paths = [COURSE_DIR, os.environ.get("PYTHONPATH", "")]
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
try:
    from helpers import env
except ModuleNotFoundError as missing:
    raise ModuleNotFoundError("Install the course first: `pip install -r requirements.txt` "
                              "in its folder (README.md).") from missing
ENV = env.setup(keras=KERAS)'''


def course_config(root: Path) -> dict:
    """The ``[tool.course]`` table of ``pyproject.toml`` (repository name and branch)."""
    import tomllib

    return tomllib.loads((Path(root) / "pyproject.toml").read_text())["tool"]["course"]


def setup_cell(keras: str, github_repo: str, branch: str = "main") -> str:
    """The expected setup cell for a notebook of Keras flavour ``keras``."""
    return SETUP_CELL.format(keras=keras, github_repo=github_repo, branch=branch)


def colab_url(github_repo: str, branch: str, notebook_name: str) -> str:
    """The "Open in Colab" address of ``notebooks/<notebook_name>``."""
    return (f"https://colab.research.google.com/github/{github_repo}/blob/{branch}/"
            f"notebooks/{notebook_name}")
