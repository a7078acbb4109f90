"""The runner: what it asks papermill for, how it stamps a full run, and what it refuses to do."""

import json
import sys
import types

import pytest

from helpers import nbtools
from tools import run_notebooks

from .conftest import make_notebook

HEADER = "# 01 · Title\n\n| You will learn | things |\n| Runtime | full ? · smoke ? |\n"


def _write_notebook(path, code=("x = 1", "SMOKE = False", "print(x)")) -> dict:
    notebook = make_notebook(list(code), markdown=(HEADER,), tags=[None, ["parameters"], None])
    notebook["cells"][2]["metadata"]["papermill"] = {"duration": 1.0}
    notebook["cells"][3]["metadata"]["execution"] = {"iopub.status.idle": "now"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook))
    return notebook


@pytest.fixture
def fake_papermill(monkeypatch):
    """A papermill whose execute_notebook records its arguments and copies the notebook."""
    calls = []

    def execute_notebook(source, target, **kwargs):
        calls.append({"source": source, "target": target, **kwargs})
        notebook = json.loads(open(source).read())
        for cell in nbtools.code_cells(notebook):
            cell["outputs"] = [{"output_type": "stream", "name": "stdout",
                                "text": "smoke\n" if kwargs["parameters"] else "full\n"}]
        open(target, "w").write(json.dumps(notebook))

    monkeypatch.setitem(sys.modules, "papermill", types.SimpleNamespace(execute_notebook=execute_notebook))
    return calls


def test_execute_injects_smoke_only_in_smoke_mode(tmp_path, fake_papermill):
    source = tmp_path / "notebooks" / "01_x.ipynb"
    _write_notebook(source)
    assert run_notebooks.execute(source, tmp_path / "out.ipynb", smoke=True) >= 0
    assert run_notebooks.execute(source, tmp_path / "full.ipynb", smoke=False, cell_timeout=5) >= 0
    smoke, full = fake_papermill
    assert smoke["parameters"] == {"SMOKE": True} and full["parameters"] is None
    assert smoke["cwd"] == str(source.parent) and smoke["kernel_name"] == "python3"
    assert smoke["execution_timeout"] == run_notebooks.CELL_TIMEOUT_S and full["execution_timeout"] == 5


def test_run_smoke_writes_the_executed_copy_into_the_out_folder(tmp_path, fake_papermill):
    source = tmp_path / "notebooks" / "01_x.ipynb"
    _write_notebook(source)
    before = source.read_text()
    run_notebooks.run_smoke(source, tmp_path / "new" / "out")
    assert fake_papermill[0]["target"] == str(tmp_path / "new" / "out" / "01_x.ipynb")
    assert "smoke" in (tmp_path / "new" / "out" / "01_x.ipynb").read_text()
    assert source.read_text() == before                          # the committed file is untouched


def test_stamp_records_hash_mode_runtimes_and_the_header_row(tmp_path):
    path = tmp_path / "01_x.ipynb"
    _write_notebook(path)
    run_notebooks.stamp_notebook(path, full_s=150.04, smoke_s=42.44)
    notebook = nbtools.read_notebook(path)
    stamp = nbtools.stamp(notebook)
    assert stamp["code_hash"] == nbtools.code_hash(notebook) and stamp["mode"] == "full"
    assert (stamp["runtime_full_s"], stamp["runtime_smoke_s"]) == (150.0, 42.4)
    header = nbtools.cell_source(notebook["cells"][0])
    assert "| Runtime | full 2.5 min · smoke 42 s (measured on a 2-core CPU, " in header
    assert "full ?" not in header and "| You will learn | things |" in header
    assert all("papermill" not in c["metadata"] and "execution" not in c["metadata"]
               for c in notebook["cells"])
    assert "full 45 s · smoke 9 s" in run_notebooks._describe_runtime(45.2, 8.9)


def test_run_full_runs_smoke_first_then_full_and_records_runtimes(tmp_path, monkeypatch):
    root = tmp_path / "course"
    path = root / "notebooks" / "01_x.ipynb"
    _write_notebook(path)
    (root / "results").mkdir()
    (root / "results" / "01_x.json").write_text(json.dumps({"metrics": {"a": 1}}))
    monkeypatch.setattr(run_notebooks, "ROOT", root)
    order = []

    def execute(source, target, smoke, cell_timeout=600):
        order.append("smoke" if smoke else "full")
        notebook = json.loads(source.read_text())
        notebook["cells"][-1]["outputs"] = [{"output_type": "stream", "name": "stdout",
                                             "text": f"{order[-1]} run\n"}]
        target.write_text(json.dumps(notebook))
        return 30.0 if smoke else 200.0

    monkeypatch.setattr(run_notebooks, "execute", execute)
    run_notebooks.run_full(path)
    assert order == ["smoke", "full"]
    notebook = nbtools.read_notebook(path)
    assert notebook["cells"][-1]["outputs"][0]["text"] == "full run\n"       # the full run's outputs
    assert nbtools.stamp(notebook)["runtime_full_s"] == 200.0
    record = json.loads((root / "results" / "01_x.json").read_text())
    assert record == {"metrics": {"a": 1}, "runtime_s": {"full": 200.0, "smoke": 30.0}}


def test_run_full_leaves_the_notebook_alone_when_a_run_fails(tmp_path, monkeypatch):
    path = tmp_path / "notebooks" / "01_x.ipynb"
    _write_notebook(path)
    before = path.read_text()
    monkeypatch.setattr(run_notebooks, "ROOT", tmp_path)

    def failing(source, target, smoke, cell_timeout=600):
        if not smoke:
            raise RuntimeError("cell 3 failed")
        target.write_text(source.read_text())
        return 1.0

    monkeypatch.setattr(run_notebooks, "execute", failing)
    with pytest.raises(RuntimeError, match="cell 3 failed"):
        run_notebooks.run_full(path)
    assert path.read_text() == before


def test_run_full_requires_the_results_file(tmp_path, monkeypatch):
    path = tmp_path / "notebooks" / "01_x.ipynb"
    _write_notebook(path)
    monkeypatch.setattr(run_notebooks, "ROOT", tmp_path)
    monkeypatch.setattr(run_notebooks, "execute",
                        lambda source, target, smoke, cell_timeout=600: target.write_text(
                            source.read_text()) and 1.0)
    with pytest.raises(SystemExit, match="wrote no results/01_x.json"):
        run_notebooks.run_full(path)


def test_main_refuses_smoke_output_into_notebooks_and_missing_files(tmp_path, capsys):
    path = tmp_path / "notebooks" / "01_x.ipynb"
    _write_notebook(path)
    with pytest.raises(SystemExit):
        run_notebooks.main(["--mode", "smoke", "--out", str(path.parent), str(path)])
    assert "must not write into notebooks/" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_notebooks.main(["--mode", "smoke", str(tmp_path / "absent.ipynb")])
    assert "no notebook at" in capsys.readouterr().err

