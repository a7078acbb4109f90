"""Execute every notebook with papermill in smoke mode (SMOKE = True injected as a parameter).

A smoke run must finish without an error, execute every code cell, check its outcomes in smoke
mode (``helpers.checks.assert_outcomes`` prints ``Outcome checks (smoke mode)``), and stay within
the smoke budget, so that a notebook whose smoke mode quietly became a full run is caught.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from pathlib import Path

import pytest
from papermill.exceptions import PapermillExecutionError

from helpers import env, nbtools
from tools import netns, run_notebooks

NOTEBOOKS = sorted((env.course_root() / "notebooks").glob("*.ipynb"))
#: Seconds a smoke run may take on the 2-core reference CPU (CONTRIBUTING.md).
SMOKE_BUDGET_S = 90
#: The machines that run this suite are up to 2x slower than the reference one, and CI runs other
#: work beside it, so the assertion allows 2.5x the budget (225 s). That still catches what it is
#: for: a smoke run that is really a full run takes many minutes.
SLOW_MACHINE_ALLOWANCE = 2.5
OUTCOME_LINE = "Outcome checks (smoke mode)"
#: What notebook 12b prints when it runs in a private network namespace (tools/netns.py).
ISOLATED_LINE = "network interfaces: ['lo']"


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    else:
        text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text


def smoke_run_problems(executed: dict) -> list[str]:
    """What is wrong with a notebook papermill executed in smoke mode (empty when all is well)."""
    problems = []
    injected = [c for c in executed["cells"] if nbtools.INJECTED_TAG in c["metadata"].get("tags", [])]
    if not injected or "SMOKE = True" not in nbtools.cell_source(injected[0]):
        problems.append("no injected `SMOKE = True` parameters cell")
    code = [c for c in executed["cells"] if c["cell_type"] == "code"]
    not_run = [i for i, c in enumerate(code) if c.get("execution_count") is None
               or c["metadata"].get("papermill", {}).get("status") != "completed"]
    if not_run:
        problems.append(f"code cells {not_run} did not run to completion")
    for index, cell in enumerate(code):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(f"code cell {index} holds an error: {output.get('ename')}: "
                                f"{output.get('evalue')}")
    printed = "\n".join(_text(o) for c in code for o in c.get("outputs", []))
    if OUTCOME_LINE not in printed:
        problems.append(f"never printed {OUTCOME_LINE!r}: outcomes were not checked in smoke mode")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_smoke_mode(path: Path, tmp_path):
    started, failure = time.perf_counter(), None
    isolated = path.name in netns.ISOLATED_NOTEBOOKS and netns.available()
    try:
        if isolated:       # the same runner, in a network namespace of its own (tools/netns.py)
            done = subprocess.run(netns.command([sys.executable, "tools/run_notebooks.py", "--mode", "smoke",
                                                 str(path), "--out", str(tmp_path)]),
                                  cwd=env.course_root(), capture_output=True, text=True, timeout=900)
            if done.returncode:
                output = (done.stdout + done.stderr)[-4000:]
                failure = f"{path.name} (private network namespace) failed:\n{output}"
        else:
            run_notebooks.run_smoke(path, tmp_path)
    except PapermillExecutionError as error:      # reported below, without papermill's traceback
        failure = (f"{path.name}: the cell executed as In [{error.exec_count}] (cell {error.cell_index}) "
                   f"raised {error.ename}: {error.evalue}\n--- cell source ---\n{error.source}")
    if failure:
        pytest.fail(failure, pytrace=False)
    elapsed = time.perf_counter() - started
    executed = nbtools.read_notebook(tmp_path / path.name)
    problems = smoke_run_problems(executed)
    printed = "\n".join(_text(o) for c in executed["cells"] for o in c.get("outputs", []))
    if isolated and ISOLATED_LINE not in printed:
        problems.append(f"never printed {ISOLATED_LINE!r}: it did not run in a private network namespace")
    assert not problems, f"{path.name}: " + "; ".join(problems)
    limit = SMOKE_BUDGET_S * SLOW_MACHINE_ALLOWANCE
    print(f"{path.name}: smoke run {elapsed:.0f} s (budget {SMOKE_BUDGET_S} s on a 2-core CPU)")
    assert elapsed <= limit, (f"{path.name}: the smoke run took {elapsed:.0f} s, more than "
                              f"{SLOW_MACHINE_ALLOWANCE}x its {SMOKE_BUDGET_S} s budget: is smoke mode "
                              f"really smaller than the full run?")


def _cell(source, outputs=(), tags=(), status="completed", count=1):
    return {"cell_type": "code", "source": source, "execution_count": count, "outputs": list(outputs),
            "metadata": {"tags": list(tags), "papermill": {"status": status}}}


OUTCOME_OUTPUT = {"output_type": "stream", "name": "stdout",
                  "text": "Outcome checks (smoke mode)\nx  1  PASS"}
GOOD = {"cells": [_cell("SMOKE = False", tags=["parameters"]),
                  _cell("SMOKE = True", tags=["injected-parameters"]),
                  _cell("checks.assert_outcomes(...)", [OUTCOME_OUTPUT])]}


@pytest.mark.parametrize("change, message", [
    (lambda nb: nb["cells"].pop(1), "no injected `SMOKE = True`"),
    (lambda nb: nb["cells"][2].update(execution_count=None), "did not run to completion"),
    (lambda nb: nb["cells"][2]["metadata"]["papermill"].update(status="pending"), "did not run"),
    (lambda nb: nb["cells"][2]["outputs"].append({"output_type": "error", "ename": "KeyError",
                                                  "evalue": "'x'"}), "holds an error: KeyError"),
    (lambda nb: nb["cells"][2]["outputs"][0].update(text="Outcome checks (full mode)"), "never printed"),
])
def test_smoke_run_problems_are_found(change, message):
    assert smoke_run_problems(copy.deepcopy(GOOD)) == []
    notebook = copy.deepcopy(GOOD)
    change(notebook)
    assert any(message in p for p in smoke_run_problems(notebook)), smoke_run_problems(notebook)
