"""Fixtures for the helpers' unit tests."""

import gzip
import json
from pathlib import Path

import pytest

from helpers import nbtools


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    """A minimal course folder (data/, notebooks/, one notebook) set as COURSE_ROOT."""
    (tmp_path / "data").mkdir()
    (tmp_path / "notebooks").mkdir()
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": []}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "notebooks" / "99_try_things.ipynb").write_text(json.dumps(notebook))
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def tiny_served_model(tmp_path_factory):
    """A tiny Keras classifier exported in TF Serving's layout (``<base>/1``), for server tests."""
    import keras

    from helpers.serving import export

    path = tmp_path_factory.mktemp("served") / "clf"
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    export.export_classifier(model, path, 1)
    return path


def write_gz(path: Path, content: bytes) -> Path:
    with gzip.open(path, "wb") as handle:
        handle.write(content)
    return path


def make_notebook(code_cells, markdown=("# title",), tags=None) -> dict:
    """A notebook dict with the given markdown and code sources (for hashing and lint tests)."""
    cells = [{"cell_type": "markdown", "metadata": {}, "source": m} for m in markdown]
    for i, source in enumerate(code_cells):
        meta = {"tags": tags[i]} if tags and tags[i] else {}
        cells.append({"cell_type": "code", "metadata": meta, "source": source, "outputs": []})
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


assert nbtools  # the fixtures above build notebooks the way nbtools reads them
