"""Recording a notebook's measured outcomes to ``results/<notebook-stem>.json``.

Only full-mode runs write: smoke runs use subsets and would overwrite real numbers with toy ones.
The README's *results at a glance* table is generated from these files (``tools/readme_results.py``).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
import platform
from pathlib import Path

from helpers import env, hardware, nbtools

# Versions recorded with every result; a notebook may add its own (e.g. "onnxruntime").
DEFAULT_PACKAGES = ("tensorflow", "keras", "tf-keras", "numpy", "ai-edge-litert")


def _plain(name: str, value):
    """A JSON-safe scalar (or list of scalars) for metric ``name``; nested dicts are refused."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # NumPy scalar
        value = value.item()
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(name, v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"Metric {name!r} is {value}: refusing to record a non-finite number")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"Metric {name!r} has type {type(value).__name__}: metrics are flat "
                    f"(numbers, booleans, strings, or lists of them)")


def package_versions(names=DEFAULT_PACKAGES) -> dict:
    """Installed versions of ``names`` (absent packages are left out)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def results_dir() -> Path:
    """``<course root>/results``, created (with a note) if a checkout lacks it."""
    folder = env.course_root() / "results"
    if not folder.is_dir():
        print(f"Note: {folder} did not exist; creating it.")
        folder.mkdir(parents=True)
    return folder


def record(notebook: str, metrics: dict, mode: str, extra_packages=()) -> dict:
    """Build the result record of ``notebook`` (its file stem) and, in full mode, write it.

    Returns the record, which also names the CPU it was measured on (``"cpu"``: model and the
    instruction-set features that decide int8 and bf16 speed). The code hash is taken from
    ``notebooks/<notebook>.ipynb``; a notebook that does not exist there is an error, so a typo
    cannot write a stray file.
    """
    env.check_mode(mode)
    if not metrics:
        raise ValueError("No metrics to record")
    notebook_path = env.course_root() / "notebooks" / f"{notebook}.ipynb"
    record = {
        "notebook": notebook,
        "mode": mode,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": package_versions((*DEFAULT_PACKAGES, *extra_packages)),
        "cpu": hardware.cpu_info(),
        "code_hash": nbtools.code_hash(notebook_path),
        "metrics": {name: _plain(name, value) for name, value in metrics.items()},
    }
    if mode == "smoke":
        print(f"Smoke mode: results/{notebook}.json is left as it is ({len(metrics)} metrics "
              f"measured).")
        return record
    path = results_dir() / f"{notebook}.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    record.update({k: v for k, v in previous.items() if k == "runtime_s"})  # the runner's timing
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"Wrote {path.relative_to(env.course_root())} ({len(metrics)} metrics).")
    return record


def load_all() -> dict[str, dict]:
    """Every recorded result, keyed by notebook stem, in notebook order."""
    folder = env.course_root() / "results"
    if not folder.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
