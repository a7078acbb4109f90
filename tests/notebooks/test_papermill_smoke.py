"""Execute every notebook with papermill in smoke mode (SMOKE = True injected as a parameter)."""

import json
import time
from pathlib import Path

import pytest

from helpers import env
from tools import run_notebooks

NOTEBOOKS = sorted((env.course_root() / "notebooks").glob("*.ipynb"))
SMOKE_BUDGET_S = 90


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_smoke_mode(path: Path, tmp_path):
    started = time.perf_counter()
    run_notebooks.run_smoke(path, tmp_path)
    elapsed = time.perf_counter() - started
    executed = json.loads((tmp_path / path.name).read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    injected = [c for c in executed["cells"]
                if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "SMOKE = True" in "".join(injected[0]["source"])
    print(f"{path.name}: smoke run {elapsed:.0f} s (budget {SMOKE_BUDGET_S} s on a 2-core CPU)")
