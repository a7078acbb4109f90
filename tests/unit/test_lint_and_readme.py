"""The notebook lint passes on the committed notebooks, and catches each kind of problem."""

import copy
import json
import re

import pytest

from helpers import env, nbtools
from tools import lint_notebooks, update_readme

ROOT = env.course_root()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CONFIG = nbtools.course_config(ROOT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_pass_the_lint(path):
    assert lint_notebooks.lint_notebook(path, CONFIG) == []


def _mutated(tmp_path, change):
    notebook = copy.deepcopy(nbtools.read_notebook(NOTEBOOKS[0]))
    change(notebook)
    path = tmp_path / NOTEBOOKS[0].name
    path.write_text(json.dumps(notebook))
    return " | ".join(lint_notebooks.lint_notebook(path, CONFIG))


def _code(nb, index):
    return [c for c in nb["cells"] if c["cell_type"] == "code"][index]


@pytest.mark.parametrize("change, message", [
    (lambda nb: _code(nb, 0).update(source="import os"), "standard setup cell"),
    (lambda nb: _code(nb, 1)["metadata"].update(tags=[]), "exactly one cell tagged"),
    (lambda nb: _code(nb, 1).update(source="SMOKE = bool(1)"), "not a literal"),
    (lambda nb: _code(nb, 2).update(source="x = tf.keras.layers.Dense(1)"), "tf.keras."),
    (lambda nb: _code(nb, 2).update(source="import tf_keras"), "must not import tf_keras"),
    (lambda nb: _code(nb, 2).update(source="print('changed')"), "stale"),
    (lambda nb: _code(nb, 2)["outputs"].append({"output_type": "error", "ename": "E"}), "error"),
    (lambda nb: nb["metadata"].pop("course"), "no run stamp"),
    (lambda nb: nb["metadata"]["kernelspec"].update(name="other"), "kernelspec"),
    (lambda nb: nb["cells"][0].update(source="# 00 · T\nno badge"), "Colab badge"),
])
def test_lint_catches(tmp_path, change, message):
    assert message in _mutated(tmp_path, change)


def test_readme_is_current():
    text = (ROOT / "README.md").read_text()
    assert update_readme.updated_readme(text) == text, "run python tools/update_readme.py"


def test_readme_lists_every_notebook_with_a_colab_badge():
    text = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"(notebooks/{path.name})" in text, path.name
        assert nbtools.colab_url(CONFIG["github_repo"], CONFIG["branch"], path.name) in text


def test_readme_states_two_commands():
    text = (ROOT / "README.md").read_text()
    assert re.search(r"pip install -r requirements.txt && jupyter lab", text)
    assert re.search(r"pip install -r requirements.txt && python -m pytest", text)


def test_render_without_results():
    assert "No full-mode results" in update_readme.render_results({})
