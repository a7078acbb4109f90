"""A simulated Google Colab: Colab's preinstalled stack in a virtual environment, a stand-in
``google.colab`` module, and the course fetched by each notebook's own setup cell.

Used by ``tests/colab/test_colab_parity.py``; also runnable by hand::

    python tools/colab_sim.py --venv /tmp/colab-venv notebooks/00_start_here.ipynb

What it checks is what a learner meets when clicking a notebook's Colab badge: the setup cell
clones the course (here: this checkout's committed ``HEAD``), installs only what Colab lacks,
never replaces TensorFlow, Keras, tf-keras or NumPy, and the notebook runs in smoke mode.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACK_FILE = ROOT / "tools" / "colab" / "colab-preinstalled.txt"
#: Distributions Colab ships that the course must never replace.
PROTECTED = ("tensorflow", "keras", "tf-keras", "numpy")
KERNEL_NAME = "colab-sim"
STAND_IN = '''"""Stand-in for Colab's google.colab package (tests only): its presence is what the course's
setup cell checks ("google.colab" in sys.modules)."""
'''


def stack_python(stack_file: Path = STACK_FILE) -> str:
    """The Python version the stack file names (``# python: 3.12``)."""
    found = re.search(r"^# python: (\d+\.\d+)", Path(stack_file).read_text(), re.MULTILINE)
    if not found:
        raise ValueError(f"{stack_file} names no '# python: X.Y' line")
    return found.group(1)


def find_python(version: str) -> str:
    """An interpreter of ``version``: ``pythonX.Y`` on PATH or under pyenv."""
    candidates = [shutil.which(f"python{version}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(str(p / "bin" / "python") for p in pyenv.glob(f"{version}.*"))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    raise FileNotFoundError(f"No Python {version} found (PATH or pyenv): the simulated Colab needs it")


def venv_python(venv: Path) -> Path:
    return Path(venv) / "bin" / "python"


def site_packages(venv: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    out = subprocess.run([str(venv_python(venv)), "-c", code], capture_output=True, text=True,
                         check=True)
    return Path(out.stdout.strip())


def build(venv: Path, stack_file: Path = STACK_FILE) -> Path:
    """Create ``venv`` with Colab's preinstalled stack and the stand-in ``google.colab``.

    Reuses a venv that already has the stack (a marker file holds the stack file's hash).
    """
    venv, marker = Path(venv), Path(venv) / "colab-stack.sha256"
    digest = hashlib.sha256(Path(stack_file).read_bytes()).hexdigest()
    if marker.is_file() and marker.read_text() == digest:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    python = find_python(stack_python(stack_file))
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv_python(venv)), "-m", "pip", "install", "-q", "--no-input"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(stack_file)], check=True)
    package = site_packages(venv) / "google" / "colab"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(STAND_IN)
    # Colab's runtime imports google.colab at start; every Python of this venv does the same.
    (site_packages(venv) / "colab_stand_in.pth").write_text("import google.colab\n")
    scratch = venv / "install-tmp"           # ipykernel 6 leaves its temporary kernel.json folder
    scratch.mkdir()
    subprocess.run([str(venv_python(venv)), "-m", "ipykernel", "install", "--prefix", str(venv),
                    "--name", KERNEL_NAME, "--display-name", "simulated Colab"],
                   check=True, capture_output=True, env={**os.environ, "TMPDIR": str(scratch)})
    shutil.rmtree(scratch)
    marker.write_text(digest)
    return venv


def fingerprints(venv: Path, names=PROTECTED) -> dict[str, str]:
    """SHA-256 of each distribution's RECORD (its files and their hashes): changes if reinstalled."""
    result = {}
    for info in site_packages(venv).glob("*.dist-info"):
        name = re.sub(r"[-_.]+", "-", info.name.removesuffix(".dist-info").rsplit("-", 1)[0]).lower()
        if name in names:
            result[name] = hashlib.sha256((info / "RECORD").read_bytes()).hexdigest()
    return result


def clone_source(root: Path = ROOT) -> tuple[str, str]:
    """``(COURSE_REPO, COURSE_BRANCH)`` pointing the setup cell at this checkout's current branch."""
    branch = subprocess.run(["git", "-C", str(root), "rev-parse", "--abbrev-ref", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    return f"file://{root}", branch


@dataclass(frozen=True)
class Run:
    """One notebook executed in the simulated Colab."""

    notebook: str
    passed: bool
    seconds: float
    setup_seconds: float | None
    setup_output: str
    error: str


def run_notebook(venv: Path, notebook: Path, workdir: Path, timeout_s: int = 600) -> Run:
    """Execute ``notebook`` in smoke mode on the simulated Colab's kernel, from a clean folder."""
    import papermill

    workdir.mkdir(parents=True, exist_ok=True)
    repo, branch = clone_source()
    environment = {"COURSE_REPO": repo, "COURSE_BRANCH": branch,
                   "COURSE_DIR": str(workdir / "content" / "course"), "COURSE_SMOKE": "1",
                   "JUPYTER_PATH": str(Path(venv) / "share" / "jupyter"), "MPLBACKEND": "Agg"}
    saved = {key: os.environ.get(key) for key in (*environment, "COURSE_ROOT", "PYTHONPATH")}
    os.environ.update(environment)
    for key in ("COURSE_ROOT", "PYTHONPATH"):          # the kernel must not see this checkout
        os.environ.pop(key, None)
    output, started, error = workdir / Path(notebook).name, time.perf_counter(), ""
    try:
        papermill.execute_notebook(str(notebook), str(output), parameters={"SMOKE": True},
                                   kernel_name=KERNEL_NAME, cwd=str(workdir), progress_bar=False,
                                   execution_timeout=timeout_s, log_output=False)
    except Exception as exc:  # noqa: BLE001 - reported, not raised: every notebook gets its run
        error = f"{type(exc).__name__}: {str(exc)[-2000:]}"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    seconds = time.perf_counter() - started
    setup_seconds, setup_output = None, ""
    if output.is_file():
        cells = [c for c in json.loads(output.read_text())["cells"] if c["cell_type"] == "code"]
        setup = cells[0]
        setup_seconds = setup.get("metadata", {}).get("papermill", {}).get("duration")
        setup_output = "".join("".join(o.get("text", "")) for o in setup.get("outputs", []))
    return Run(Path(notebook).name, not error, seconds, setup_seconds, setup_output, error)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--venv", type=Path, required=True)
    args = parser.parse_args(argv)
    venv = build(args.venv)
    before = fingerprints(venv)
    with tempfile.TemporaryDirectory(prefix="colab-sim-") as scratch:
        for notebook in args.notebooks:
            run = run_notebook(venv, notebook.resolve(), Path(scratch))
            print(f"{run.notebook}: {'pass' if run.passed else 'FAIL'} in {run.seconds:.0f} s "
                  f"(setup cell {run.setup_seconds or 0:.0f} s) {run.error[:500]}")
    changed = sorted(name for name, digest in fingerprints(venv).items() if before.get(name) != digest)
    print("protected packages unchanged" if not changed else f"CHANGED: {changed}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
