"""The notebook lint passes on the committed notebooks, and catches each kind of problem.

Each mutation test starts from a *clean* copy of a committed notebook (outputs re-stamped with
its current code hash, a matching results file in a scratch course folder), checks that the lint
finds nothing in it, applies one change and checks that the lint names exactly that problem. So
a rule that stopped working fails its test even while the committed notebooks are stale.
"""

import copy
import json
import re

import pytest

from helpers import env, nbtools, results
from tools import lint_notebooks, update_readme

ROOT = env.course_root()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CONFIG = nbtools.course_config(ROOT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_pass_the_lint(path):
    problems = lint_notebooks.lint_notebook(path, CONFIG)
    assert problems == [], f"{path.name}:\n" + "\n".join(problems)


def _flavour(path) -> str:
    setup = nbtools.cell_source(nbtools.code_cells(nbtools.read_notebook(path))[0])
    found = lint_notebooks.KERAS_LINE.search(setup)
    return found.group(1) if found else "3"


KERAS3 = next(p for p in NOTEBOOKS if p.stem != lint_notebooks.START_HERE and _flavour(p) == "3")
KERAS2 = next(p for p in NOTEBOOKS if _flavour(p) == "2")
START_HERE = ROOT / "notebooks" / f"{lint_notebooks.START_HERE}.ipynb"


def _code(nb, index):
    return [c for c in nb["cells"] if c["cell_type"] == "code"][index]


def _restamp(notebook: dict) -> str:
    """Make ``notebook``'s outputs fresh: a full-run stamp with its current code hash."""
    notebook["metadata"][nbtools.STAMP_KEY] = {"code_hash": nbtools.code_hash(notebook), "mode": "full",
                                               "runtime_full_s": 60.0, "runtime_smoke_s": 10.0}
    return notebook["metadata"][nbtools.STAMP_KEY]["code_hash"]


def clean_copy(source, root, metrics=None) -> tuple[dict, object]:
    """A lint-clean copy of ``source`` under ``root/notebooks``, with ``root/results/<stem>.json``."""
    notebook = copy.deepcopy(nbtools.read_notebook(source))
    code = nbtools.code_cells(notebook)
    code[0]["source"] = nbtools.setup_cell(_flavour(source), CONFIG["github_repo"], CONFIG["branch"])
    for cell in code:
        cell["outputs"] = [o for o in cell.get("outputs", []) if o.get("output_type") != "error"]
    if not any(c["outputs"] for c in code):
        code[-1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "done\n"}]
    code_hash = _restamp(notebook)
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    (root / "results").mkdir(exist_ok=True)
    path = root / "notebooks" / source.name
    path.write_text(json.dumps(notebook))
    (root / "results" / f"{source.stem}.json").write_text(
        json.dumps({"code_hash": code_hash, "date": "2026-01-01T00:00:00+00:00",
                    "metrics": metrics or {"x": 1}}))
    return notebook, path


def _lint(notebook, path, root, config=CONFIG) -> list[str]:
    path.write_text(json.dumps(notebook))
    return lint_notebooks.lint_notebook(path, config, root=root)


def _mutation_problems(tmp_path, source, change, restamp=False) -> list[str]:
    notebook, path = clean_copy(source, tmp_path)
    assert _lint(notebook, path, tmp_path) == [], "the unmutated copy must be clean"
    change(notebook)
    if restamp:          # a change to the code only: keep the outputs "fresh" to isolate the rule
        code_hash = _restamp(notebook)
        (tmp_path / "results" / f"{source.stem}.json").write_text(json.dumps({"code_hash": code_hash}))
    return _lint(notebook, path, tmp_path)


def _move_parameters_down(nb):
    """Put the parameters cell after the code cell that follows it."""
    cells = nb["cells"]
    index = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    parameters = cells.pop(index)
    after = next(i for i in range(index, len(cells)) if cells[i]["cell_type"] == "code")
    cells.insert(after + 1, parameters)


def _keras2_setup(nb):
    _code(nb, 0)["source"] = nbtools.setup_cell("2", CONFIG["github_repo"], CONFIG["branch"])


@pytest.mark.parametrize("change, message, restamp", [
    (lambda nb: _code(nb, 0).update(source="import os"), "standard setup cell", True),
    (lambda nb: _code(nb, 1)["metadata"].update(tags=[]), "exactly one cell tagged", False),
    (lambda nb: _code(nb, 2)["metadata"].update(tags=["parameters"]), "exactly one cell tagged", False),
    (lambda nb: _move_parameters_down(nb), "right after the setup cell", False),
    (lambda nb: _code(nb, 1).update(source="SMOKE = bool(1)"), "not a literal", True),
    (lambda nb: _code(nb, 1).update(source="SMOKE = False\nprint(SMOKE)"), "only `NAME = literal`", True),
    (lambda nb: _code(nb, 1).update(source="SMOKE = (False"), "does not parse", True),
    (lambda nb: _code(nb, 2).update(source="x = tf.keras.layers.Dense(1)"), "uses `tf.keras.`", True),
    (lambda nb: _code(nb, 2).update(source="tf.compat.v1.Session()"), "uses `tf.compat.v1`", True),
    (lambda nb: _code(nb, 2).update(source="import tf_keras"), "must not import tf_keras", True),
    (lambda nb: _code(nb, 2).update(source="from tf_keras import layers"), "must not import tf_keras", True),
    (lambda nb: _code(nb, 2).update(source="print('changed')"), "outputs are stale", False),
    (lambda nb: nb["metadata"]["course"].update(code_hash="0123456789abcdef"), "outputs are stale", False),
    (lambda nb: nb["metadata"]["course"].update(mode="smoke"), "from a smoke run, not a full one", False),
    (lambda nb: nb["metadata"].pop("course"), "no run stamp", False),
    (lambda nb: [c.update(outputs=[]) for c in nb["cells"] if c["cell_type"] == "code"], "no outputs", False),
    (lambda nb: _code(nb, 2)["outputs"].append({"output_type": "error", "ename": "E"}), "error output (E)",
     False),
    (lambda nb: nb["metadata"]["kernelspec"].update(name="other"), "kernelspec", False),
    (lambda nb: nb["cells"][0].update(source="# 01 · T\nno badge\n| Runtime | x |"), "Colab badge", False),
    (lambda nb: nb["cells"][0].update(source=nbtools.cell_source(nb["cells"][0]).replace("| Runtime |",
                                                                                          "| Time |")),
     "`| Runtime |` row", False),
    (lambda nb: nb["cells"][0].update(
        source="# 99 · " + nbtools.cell_source(nb["cells"][0]).split(" · ", 1)[1]), "starting `# ", False),
])
def test_lint_catches_in_a_keras3_notebook(tmp_path, change, message, restamp):
    problems = _mutation_problems(tmp_path, KERAS3, change, restamp)
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize("source", ["import keras", "from keras import layers", "  import keras.ops"])
def test_a_keras2_notebook_must_not_import_keras(tmp_path, source):
    problems = _mutation_problems(tmp_path, KERAS2, lambda nb: _code(nb, 2).update(source=source),
                                  restamp=True)
    assert problems == ["code cell 2: a Keras 2 notebook must not import keras (3)"]


def test_the_keras_rules_follow_the_setup_cell(tmp_path):
    # A Keras 2 notebook may import tf_keras; a Keras 3 one may import keras.
    assert _mutation_problems(tmp_path / "a", KERAS2, lambda nb: _code(nb, 2).update(
        source="import tf_keras"), restamp=True) == []
    assert _mutation_problems(tmp_path / "b", KERAS3, lambda nb: _code(nb, 2).update(
        source="import keras"), restamp=True) == []

    def to_keras2(nb):  # the same Keras 3 notebook declared Keras 2: its `import keras` is refused
        _keras2_setup(nb)
        _code(nb, 2)["source"] = "import keras"

    problems = _mutation_problems(tmp_path / "c", KERAS3, to_keras2, restamp=True)
    assert "code cell 2: a Keras 2 notebook must not import keras (3)" in problems


def test_results_file_missing_or_from_other_code(tmp_path):
    notebook, path = clean_copy(KERAS3, tmp_path)
    result = tmp_path / "results" / f"{KERAS3.stem}.json"
    result.write_text(json.dumps({"code_hash": "0123456789abcdef", "metrics": {}}))
    assert _lint(notebook, path, tmp_path) == [
        f"results/{KERAS3.stem}.json comes from other code than the outputs"]
    result.unlink()
    assert _lint(notebook, path, tmp_path) == [
        f"missing results/{KERAS3.stem}.json (written by the full run)"]


def test_file_name_and_branch_are_checked(tmp_path):
    notebook, path = clean_copy(KERAS3, tmp_path)
    renamed = path.with_name("Train-Fundamentals.ipynb")
    assert any("file name must be NN_verb_slug" in p for p in _lint(notebook, renamed, tmp_path))
    # The setup cell clones the configured branch: a notebook made for `main` fails for `dev`.
    problems = _lint(notebook, path, tmp_path, config={**CONFIG, "branch": "dev"})
    assert any("standard setup cell" in p for p in problems)


def test_a_further_part_of_a_chapter_is_named_and_titled_with_its_letter(tmp_path):
    notebook, path = clean_copy(KERAS3, tmp_path)
    part = path.with_name(f"{path.name[:2]}b_more_things.ipynb")
    results = tmp_path / "results"
    (results / f"{part.stem}.json").write_text((results / f"{path.stem}.json").read_text())
    header = nbtools.cell_source(notebook["cells"][0]).replace(
        nbtools.colab_url(CONFIG["github_repo"], CONFIG["branch"], path.name),
        nbtools.colab_url(CONFIG["github_repo"], CONFIG["branch"], part.name))
    notebook["cells"][0]["source"] = f"# {part.name[:3]} · " + header.split(" · ", 1)[1]
    assert _lint(notebook, part, tmp_path) == []
    notebook["cells"][0]["source"] = f"# {part.name[:2]} · " + header.split(" · ", 1)[1]
    assert _lint(notebook, part, tmp_path) == [
        f"first cell must be markdown starting `# {part.name[:3]} · Title`"]
    assert any("file name must be" in p for p in _lint(notebook, path.with_name("11bb_x.ipynb"), tmp_path))


def test_a_course_map_cell_may_list_every_part_of_a_chapter():
    row = ["11", "Serving", "11_serve_models.ipynb, 11b_load_test_servers.ipynb"]
    assert lint_notebooks._notebook_names(row) == ["11_serve_models.ipynb", "11b_load_test_servers.ipynb"]
    assert lint_notebooks._notebook_names(["03", "(planned)"]) == []


def test_main_prints_each_problem_and_fails(tmp_path, capsys, monkeypatch):
    notebook, path = clean_copy(KERAS3, tmp_path)
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    monkeypatch.setattr(lint_notebooks, "ROOT", tmp_path)
    assert lint_notebooks.main([str(path)]) == 0
    assert "1 notebook(s), 0 problem(s)" in capsys.readouterr().out
    notebook["metadata"]["kernelspec"]["name"] = "other"
    _code(notebook, 2)["outputs"].append({"output_type": "error", "ename": "ValueError"})
    path.write_text(json.dumps(notebook))
    assert lint_notebooks.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path.name}: kernelspec must be `python3`" in out and "2 problem(s)" in out
    assert lint_notebooks.main([str(tmp_path / "absent.ipynb")]) == 1


# Notebook 00: outputs that depend on which notebooks exist.

def _course_map_html(listed: dict[int, str]) -> str:
    """The course map as notebook 00 renders it (a pandas Styler), chapters 0-15."""
    import pandas as pd

    from helpers import course

    plan = pd.DataFrame([{"#": f"{c.number:02d}", "part": c.part, "topic": c.topic,
                          "notebook": listed.get(c.number, "(planned)")} for c in course.CHAPTERS])
    return plan.style.hide(axis="index").to_html()


def start_here_copy(root, existing: dict[int, str], listed: dict[int, str], available: int):
    """A clean 00 whose course map lists ``listed``, in a course folder holding ``existing``."""
    notebook, path = clean_copy(START_HERE, root, metrics={"notebooks_available": available})
    for number, name in existing.items():
        if number != 0:
            (root / "notebooks" / name).write_text("{}")
    course_map = next(c for c in nbtools.code_cells(notebook) if "course.CHAPTERS" in nbtools.cell_source(c))
    course_map["outputs"] = [{"output_type": "execute_result", "execution_count": 5, "metadata": {},
                              "data": {"text/html": _course_map_html(listed),
                                       "text/plain": "<pandas.io.formats.style.Styler at 0x0>"}}]
    return notebook, path


THREE = {0: "00_start_here.ipynb", 1: "01_train_fundamentals.ipynb", 2: "02_validate_models.ipynb"}


def test_start_here_consistent_with_the_repository_is_clean(tmp_path):
    notebook, path = start_here_copy(tmp_path, THREE, THREE, available=3)
    rows = lint_notebooks.course_map_rows(notebook)
    assert [number for number, _ in rows] == list(range(16))
    assert rows[2][1][-1] == "02_validate_models.ipynb" and rows[3][1][-1] == "(planned)"
    assert _lint(notebook, path, tmp_path) == []


def test_start_here_count_of_notebooks_must_match_the_repository(tmp_path):
    notebook, path = start_here_copy(tmp_path, THREE, THREE, available=2)
    assert _lint(notebook, path, tmp_path) == [
        "results/00_start_here.json says notebooks_available = 2, but 3 chapters have a notebook now: "
        + lint_notebooks.RERUN_00]


def test_start_here_must_not_call_an_existing_notebook_planned(tmp_path):
    existing = {**THREE, 4: "04_quantize_post_training.ipynb"}
    notebook, path = start_here_copy(tmp_path, existing, THREE, available=4)
    problems = _lint(notebook, path, tmp_path)
    assert problems == ["the course map says chapter 04 is (planned), but 04_quantize_post_training.ipynb "
                        "exists: " + lint_notebooks.RERUN_00]
    assert "re-run 00 in full mode" in problems[0]


def test_start_here_must_not_list_a_missing_notebook(tmp_path):
    listed = {**THREE, 5: "05_quantization_aware_training.ipynb"}
    notebook, path = start_here_copy(tmp_path, THREE, listed, available=3)
    assert _lint(notebook, path, tmp_path) == [
        "the course map lists 05_quantization_aware_training.ipynb, which does not exist: "
        + lint_notebooks.RERUN_00]


def test_start_here_without_a_course_map_is_reported(tmp_path):
    notebook, path = start_here_copy(tmp_path, THREE, THREE, available=3)
    for cell in nbtools.code_cells(notebook):
        if "course.CHAPTERS" in nbtools.cell_source(cell):
            cell["outputs"] = []
    assert any("no course map" in p and "re-run 00" in p for p in _lint(notebook, path, tmp_path))


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
    test_command = "pip install -r requirements.txt && python tools/system_packages.py && python -m pytest"
    assert test_command in text
    assert test_command in (ROOT / ".ci" / "run").read_text()      # CI runs what the README says


def test_render_without_results():
    assert "No full-mode results" in update_readme.render_results({})


def test_render_results_one_row_per_notebook_with_its_headlines_and_a_link(monkeypatch):
    monkeypatch.setattr(update_readme, "HEADLINES", {"01_train": ["n", "accuracy"], "03_x": ["gone"]})
    records = {"01_train": {"date": "2026-01-02T03:04:05+00:00", "cpu": {"model": "Xeon"},
                            "metrics": {"accuracy": 0.912345, "ok": True, "sizes": [1.5, 2], "n": 3}},
               "02_check": {"date": "2026-02-03T00:00:00+00:00", "metrics": {"label": "x", "b": False}}}
    lines = update_readme.render_results(records).splitlines()
    assert lines[:2] == ["| notebook (full run) | headline results | all |", "|---|---|---|"]
    assert lines[2:] == [
        "| [01_train](notebooks/01_train.ipynb) (2026-01-02) | `n` 3 · `accuracy` 0.9123 | "
        "[4 metrics](results/01_train.json) |",
        "| [02_check](notebooks/02_check.ipynb) (2026-02-03) | `label` x · `b` false | "
        "[2 metrics](results/02_check.json) |"]
    with pytest.raises(KeyError, match=r"03_x: headline metrics \['gone'\] are not in results/03_x.json"):
        update_readme.headline_metrics("03_x", {"accuracy": 1.0})


def test_every_headline_names_a_notebook_and_metrics_its_results_have():
    notebooks = {path.stem for path in NOTEBOOKS}
    recorded = results.load_all()
    for stem in update_readme.HEADLINES:
        assert stem in notebooks, f"HEADLINES names {stem}, which has no notebook"
        if stem in recorded:
            update_readme.headline_metrics(stem, recorded[stem]["metrics"])


def test_render_chapters_shows_title_learning_goal_runtime_and_badge(tmp_path, monkeypatch):
    notebook, path = clean_copy(KERAS3, tmp_path)
    header = "# 01 · Train a model\n\n| You will learn | gradients, optimizers |\n| Runtime | x |"
    notebook["cells"][0]["source"] = header
    notebook["metadata"]["course"].update(runtime_full_s=150.0, runtime_smoke_s=42.4)
    path.write_text(json.dumps(notebook))
    unstamped = copy.deepcopy(notebook)
    unstamped["metadata"].pop("course")
    unstamped["cells"][0]["source"] = "# 02 · Validate\n"
    (tmp_path / "notebooks" / "02_validate.ipynb").write_text(json.dumps(unstamped))
    unstamped["cells"][0]["source"] = "# 02b · Validate more\n"
    (tmp_path / "notebooks" / "02b_validate_more.ipynb").write_text(json.dumps(unstamped))
    monkeypatch.setattr(update_readme, "ROOT", tmp_path)
    lines = update_readme.render_chapters(CONFIG).splitlines()
    badge = nbtools.colab_url(CONFIG["github_repo"], CONFIG["branch"], path.name)
    assert lines[2] == (f"| 01 | [Train a model](notebooks/{path.name}) | gradients, optimizers | "
                        f"2.5 min (smoke 42 s) | [![Open in Colab](https://colab.research.google.com/"
                        f"assets/colab-badge.svg)]({badge}) |")
    assert lines[3].startswith("| 02 | [Validate](notebooks/02_validate.ipynb) |  | not yet run |")
    assert lines[4].startswith("| 02b | [Validate more](notebooks/02b_validate_more.ipynb) |  | "
                               "not yet run |")


def test_updated_readme_replaces_only_the_marked_sections(tmp_path, monkeypatch):
    monkeypatch.setenv(env.ROOT_ENV, str(tmp_path))
    (tmp_path / "data").mkdir()
    clean_copy(KERAS3, tmp_path)
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    monkeypatch.setattr(update_readme, "ROOT", tmp_path)
    text = ("intro\n<!-- chapters:start -->\nold\n<!-- chapters:end -->\nmiddle\n"
            "<!-- results:start -->\nold\n<!-- results:end -->\nend\n")
    new = update_readme.updated_readme(text)
    assert new.startswith("intro\n<!-- chapters:start -->\n| # | notebook |") and new.endswith("end\n")
    assert "old" not in new and "\nmiddle\n" in new and f"[{KERAS3.stem}](notebooks/{KERAS3.name})" in new
    with pytest.raises(ValueError, match="lacks the markers"):
        update_readme.updated_readme("no markers here")
    (tmp_path / "README.md").write_text(text)
    assert update_readme.main(["--check"]) == 1                   # out of date
    assert update_readme.main([]) == 0 and (tmp_path / "README.md").read_text() == new
    assert update_readme.main(["--check"]) == 0
