"""Notebook lint: the conventions of COURSE_GUIDE §3 and §6, checked without executing anything.

Committed outputs must come from a full run of the current code, with a matching results file;
notebook 00's outputs, which depend on which notebooks exist, are checked against the repository.

Usage: python tools/lint_notebooks.py [notebooks/NN_name.ipynb ...]   (default: every notebook)
Exit status 1 and one line per problem when anything is wrong.
"""

from __future__ import annotations

import ast
import html
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from helpers import nbtools  # noqa: E402

# NN_slug, or NNb_slug for a further part of chapter NN (CONTRIBUTING.md: split rather than exceed).
NAME_PATTERN = re.compile(r"^(\d\d[a-z]?)_[a-z0-9]+(_[a-z0-9]+)*\.ipynb$")
FORBIDDEN_CODE = {"tf.keras.": "use `keras.` or `tf_keras.` explicitly (COURSE_GUIDE §7)",
                  "tf.compat.v1": "TF1 APIs are not taught here"}
KERAS_LINE = re.compile(r'^KERAS = "([23])"', re.MULTILINE)
# Notebook 00 shows which chapters have a notebook; its outputs go stale when a notebook is added
# even though its code did not change, so they are checked against the repository itself.
START_HERE = "00_start_here"
PLANNED = "(planned)"
RERUN_00 = ("re-run 00 in full mode (python tools/run_notebooks.py --mode full "
            "notebooks/00_start_here.ipynb)")
_TABLE = re.compile(r"<table\b.*?</table>", re.DOTALL | re.IGNORECASE)
_ROW = re.compile(r"<tr\b[^>]*>(.*?)</tr>", re.DOTALL | re.IGNORECASE)
_CELL = re.compile(r"<t[dh]\b[^>]*>(.*?)</t[dh]>", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


def _parameters_problems(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"parameters cell does not parse: {exc}"]
    problems = []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            problems.append(f"parameters cell line {node.lineno}: only `NAME = literal` allowed")
            continue
        try:
            ast.literal_eval(node.value)
        except ValueError:
            problems.append(f"parameters cell line {node.lineno}: {node.targets[0].id} is not "
                            f"a literal")
    return problems


def _html_outputs(notebook: dict) -> list[str]:
    """The ``text/html`` data of every output of every code cell."""
    found = []
    for cell in nbtools.code_cells(notebook):
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get("text/html")
            if data:
                found.append("".join(data) if isinstance(data, list) else data)
    return found


def _notebook_names(row: list[str]) -> list[str]:
    """The notebook file names in a course-map row (a cell may list several: ``11_a, 11b_b``)."""
    return [name for cell in row for name in re.split(r",\s*", cell) if NAME_PATTERN.match(name)]


def course_map_rows(notebook: dict) -> list[tuple[int, list[str]]]:
    """Rows of the course map in a notebook's outputs: (chapter number, the row's cell texts).

    The course map is the HTML table (a rendered DataFrame or Styler) whose rows name a notebook
    file or say ``(planned)``; a row's chapter number is its first two-digit cell.
    """
    rows = []
    for text in _html_outputs(notebook):
        for table in _TABLE.findall(text):
            cells = [[html.unescape(_TAG.sub("", c)).strip() for c in _CELL.findall(row)]
                     for row in _ROW.findall(table)]
            if not any(PLANNED in row or _notebook_names(row) for row in cells):
                continue
            for row in cells:
                number = next((c for c in row if re.fullmatch(r"\d\d", c)), None)
                if number is not None:
                    rows.append((int(number), row))
    return rows


def repository_state_problems(notebook: dict, root: Path) -> list[str]:
    """Notebook 00's outputs that depend on the repository rather than on its code.

    ``results/00_start_here.json``'s ``notebooks_available`` must equal the number of chapters of
    :data:`helpers.course.CHAPTERS` that have a notebook now, and the course map in the outputs
    must not call an existing notebook ``(planned)`` nor name a notebook that does not exist.
    """
    from helpers import course

    notebooks = {c.number: c.notebook(root) for c in course.CHAPTERS}
    existing = {number: path for number, path in notebooks.items() if path is not None}
    problems = []
    result_path = root / "results" / f"{START_HERE}.json"
    if result_path.is_file():
        recorded = json.loads(result_path.read_text()).get("metrics", {}).get("notebooks_available")
        if recorded != len(existing):
            problems.append(f"results/{START_HERE}.json says notebooks_available = {recorded}, but "
                            f"{len(existing)} chapters have a notebook now: {RERUN_00}")
    rows = course_map_rows(notebook)
    if not rows:
        problems.append(f"no course map (chapters with their notebook or {PLANNED}) in the outputs: "
                        f"{RERUN_00}")
    for number, row in rows:
        if PLANNED in row and number in existing:
            problems.append(f"the course map says chapter {number:02d} is {PLANNED}, but "
                            f"{existing[number].name} exists: {RERUN_00}")
        for name in _notebook_names(row):
            if not (root / "notebooks" / name).is_file():
                problems.append(f"the course map lists {name}, which does not exist: {RERUN_00}")
    return problems


def lint_notebook(path: Path, config: dict, root: Path | None = None) -> list[str]:
    """Every problem found in one notebook, as human-readable lines (empty when clean).

    ``root`` is the course folder whose ``results/`` and ``notebooks/`` the outputs are checked
    against (default: this repository).
    """
    path, root = Path(path), Path(root or ROOT)
    try:
        notebook = nbtools.read_notebook(path)
    except (FileNotFoundError, ValueError) as exc:
        return [str(exc)]
    problems = []
    match = NAME_PATTERN.match(path.name)
    if not match:
        problems.append("file name must be NN_verb_slug.ipynb (two digits, then a letter for a further "
                        "part of a chapter, e.g. 11b_; lower-case words)")
    cells = notebook.get("cells", [])
    if notebook.get("metadata", {}).get("kernelspec", {}).get("name") != "python3":
        problems.append("kernelspec must be `python3`")

    # Header: title with the notebook's number, a Colab badge pointing at this very file.
    header = nbtools.cell_source(cells[0]) if cells and cells[0]["cell_type"] == "markdown" else ""
    number = match.group(1) if match else "??"
    if not header.startswith(f"# {number} · "):
        problems.append(f"first cell must be markdown starting `# {number} · Title`")
    url = nbtools.colab_url(config["github_repo"], config["branch"], path.name)
    if f"({url})" not in header:
        problems.append(f"header lacks the Colab badge linking {url}")
    if "| Runtime |" not in header:
        problems.append("header's at-a-glance table lacks its `| Runtime |` row")

    # Setup cell, then exactly one parameters cell.
    code = nbtools.code_cells(notebook)
    setup = nbtools.cell_source(code[0]) if code else ""
    keras = KERAS_LINE.search(setup)
    flavour = keras.group(1) if keras else None
    if flavour is None or setup != nbtools.setup_cell(flavour, config["github_repo"], config["branch"]):
        problems.append("first code cell is not the standard setup cell (helpers.nbtools.SETUP_CELL)")
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        problems.append(f"needs exactly one cell tagged `parameters`, found {len(tagged)}")
    elif len(code) < 2 or code[1] is not tagged[0]:
        problems.append("the `parameters` cell must be the code cell right after the setup cell")
    else:
        problems += _parameters_problems(nbtools.cell_source(tagged[0]))

    # Code rules.
    for index, cell in enumerate(code):
        source = nbtools.cell_source(cell)
        for needle, why in FORBIDDEN_CODE.items():
            if needle in source:
                problems.append(f"code cell {index} uses `{needle}`: {why}")
        if flavour == "2" and re.search(r"^\s*(import keras\b|from keras\b)", source, re.M):
            problems.append(f"code cell {index}: a Keras 2 notebook must not import keras (3)")
        if flavour == "3" and re.search(r"^\s*(import tf_keras|from tf_keras)", source, re.M):
            problems.append(f"code cell {index}: a Keras 3 notebook must not import tf_keras")
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(f"code cell {index} holds an error output ({output.get('ename')})")

    # Committed outputs: present, from a full run, fresh against the code.
    stamp = nbtools.stamp(notebook)
    if not any(c.get("outputs") for c in code):
        problems.append("no outputs: commit the notebook executed in full mode (tools/run_notebooks.py)")
    if not stamp:
        problems.append("no run stamp: execute it with tools/run_notebooks.py --mode full")
    else:
        if stamp.get("mode") != "full":
            problems.append(f"outputs come from a {stamp.get('mode')} run, not a full one")
        if stamp.get("code_hash") != nbtools.code_hash(notebook):
            problems.append("outputs are stale: the code changed since the last full run")
        result_path = root / "results" / f"{path.stem}.json"
        if not result_path.is_file():
            problems.append(f"missing {result_path.relative_to(root)} (written by the full run)")
        elif json.loads(result_path.read_text()).get("code_hash") != stamp.get("code_hash"):
            problems.append(f"{result_path.relative_to(root)} comes from other code than the outputs")
    if path.stem == START_HERE and any(c.get("outputs") for c in code):
        problems += repository_state_problems(notebook, root)
    return problems


def main(argv: list[str]) -> int:
    config = nbtools.course_config(ROOT)
    paths = [Path(a) for a in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not paths:
        print("no notebooks to lint")
        return 1
    failures = 0
    for path in paths:
        for problem in lint_notebook(path, config):
            print(f"{path.name}: {problem}")
            failures += 1
    print(f"lint: {len(paths)} notebook(s), {failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
