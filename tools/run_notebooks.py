"""Execute course notebooks with papermill, in full or smoke mode.

Full mode (what gets committed): runs each notebook in place; the notebook writes its
``results/<stem>.json``. The runner then times a smoke run too, stamps the notebook's metadata
with the code hash and both runtimes, writes the runtimes into the header's ``| Runtime |`` row
and into the results file, and regenerates the README's *results at a glance*.
A failed full run leaves the committed notebook untouched.

Smoke mode: injects ``SMOKE = True`` and writes the executed copy to a scratch folder outside
``notebooks/`` (never the committed file).

Usage:
    python tools/run_notebooks.py --mode full notebooks/01_train_fundamentals.ipynb
    python tools/run_notebooks.py --mode smoke --out /tmp/smoke        # every notebook
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from helpers import nbtools  # noqa: E402

CELL_TIMEOUT_S = 600
RUNTIME_ROW = re.compile(r"^\| Runtime \|.*\|$", re.MULTILINE)


def execute(source: Path, target: Path, smoke: bool, cell_timeout: int = CELL_TIMEOUT_S) -> float:
    """Run ``source`` with papermill into ``target``; return the wall time in seconds."""
    import papermill

    started = time.perf_counter()
    papermill.execute_notebook(
        str(source), str(target), parameters={"SMOKE": True} if smoke else None,
        kernel_name="python3", cwd=str(source.parent), execution_timeout=cell_timeout,
        progress_bar=False, log_output=False, request_save_on_cell_execute=False)
    return time.perf_counter() - started


def run_smoke(path: Path, out_dir: Path) -> float:
    """Execute one notebook in smoke mode into ``out_dir``; return the wall time."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return execute(path, out_dir / path.name, smoke=True)


def _describe_runtime(full_s: float, smoke_s: float) -> str:
    full = f"{full_s / 60:.1f} min" if full_s >= 90 else f"{full_s:.0f} s"
    return (f"| Runtime | full {full} · smoke {smoke_s:.0f} s (measured on a 2-core CPU, "
            f"{dt.date.today().isoformat()}) |")


def stamp_notebook(path: Path, full_s: float, smoke_s: float) -> None:
    """Write the run stamp into the notebook's metadata and the runtime row of its header."""
    notebook = nbtools.read_notebook(path)
    notebook["metadata"][nbtools.STAMP_KEY] = {
        "code_hash": nbtools.code_hash(notebook), "mode": "full",
        "runtime_full_s": round(full_s, 1), "runtime_smoke_s": round(smoke_s, 1),
        "executed": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    header = notebook["cells"][0]
    text = RUNTIME_ROW.sub(_describe_runtime(full_s, smoke_s), nbtools.cell_source(header))
    header["source"] = text.splitlines(keepends=True)
    for cell in notebook["cells"]:  # papermill's per-cell timing metadata only adds diff noise
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def run_full(path: Path) -> None:
    """Execute in place (via a temporary copy), time a smoke run, stamp, update results/README."""
    with tempfile.TemporaryDirectory() as scratch:
        smoke_s = run_smoke(path, Path(scratch) / "smoke")   # first: a smoke failure costs less
        executed = Path(scratch) / path.name
        full_s = execute(path, executed, smoke=False)
        shutil.copyfile(executed, path)
    stamp_notebook(path, full_s, smoke_s)
    result = ROOT / "results" / f"{path.stem}.json"
    if not result.is_file():
        raise SystemExit(f"{path.name} ran but wrote no {result.relative_to(ROOT)}")
    record = json.loads(result.read_text())
    record["runtime_s"] = {"full": round(full_s, 1), "smoke": round(smoke_s, 1)}
    result.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{path.name}: full {full_s:.0f} s, smoke {smoke_s:.0f} s; stamped")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--mode", required=True, choices=("full", "smoke"))
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "course-smoke",
                        help="smoke mode: folder for the executed copies")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in paths:
        if not path.is_file():
            parser.error(f"no notebook at {path}")
        if args.mode == "full":
            run_full(path)
        else:
            if args.out.resolve() == path.parent:
                parser.error("smoke runs must not write into notebooks/")
            print(f"{path.name}: smoke {run_smoke(path, args.out):.0f} s -> {args.out}")
    if args.mode == "full":
        from tools import update_readme

        update_readme.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
