"""Notebook set-up: Keras flavour, modes, seeds, quiet logs, paths and a one-line environment report.

Every notebook's setup cell calls :func:`setup` once. Nothing here imports TensorFlow at module
import time, because the Keras flavour must be chosen (``TF_USE_LEGACY_KERAS``) *before* TensorFlow
is first imported.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import random
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

MODES = ("full", "smoke")
KERAS_FLAVOURS = ("3", "2")
SMOKE_ENV = "COURSE_SMOKE"
ROOT_ENV = "COURSE_ROOT"
DEFAULT_SEED = 42

# The stack the course is tested on (requirements.txt pins the exact versions).
TESTED_TENSORFLOW = "2.21"
# Modules whose in-memory version must equal the installed distribution's (module name:
# distribution name); a mismatch means a `pip install` changed them after they were imported,
# and only a restart fixes that.
RESTART_SENSITIVE = {"numpy": "numpy", "tensorflow": "tensorflow", "keras": "keras",
                     "tf_keras": "tf-keras", "google.protobuf": "protobuf"}
RESTART_ADVICE = ("Restart the runtime (Colab: Runtime → Restart session; Jupyter: Kernel → Restart "
                  "Kernel), then run this notebook again from the top")
# What Colab lacks (TensorFlow itself is preinstalled there and is never reinstalled).
COLAB_EXTRAS_FILE = "requirements-colab.txt"
NO_DEPS_MARKER = "install: --no-deps"


class CourseSetupError(RuntimeError):
    """Raised when the environment cannot run the course as it is (with what to do about it)."""


def course_root() -> Path:
    """Return the course repository's root folder, whatever the current working directory.

    The root is ``$COURSE_ROOT`` when set, else the folder that holds the ``helpers`` package
    (an editable install, ``pip install -e .``, or a clone on ``sys.path``). It must contain
    ``data/`` and ``notebooks/``; otherwise a :class:`CourseSetupError` says how to fix it.
    """
    candidate = Path(os.environ.get(ROOT_ENV) or Path(__file__).resolve().parent.parent)
    if not ((candidate / "data").is_dir() and (candidate / "notebooks").is_dir()):
        raise CourseSetupError(
            f"Cannot find the course folder: {candidate} has no data/ and notebooks/. "
            f"Install the helpers from a clone with `pip install -e .` (requirements.txt does), "
            f"or set {ROOT_ENV} to the clone's path."
        )
    return candidate


def resolve_mode(smoke: bool = False) -> str:
    """Return ``"smoke"`` or ``"full"`` from the notebook's ``SMOKE`` parameter and ``$COURSE_SMOKE``.

    ``COURSE_SMOKE=1`` (or ``true``/``yes``) forces smoke mode, ``0``/``false``/``no``/empty leaves
    the parameter in charge; any other value is an error rather than a silent guess.
    """
    if not isinstance(smoke, bool):
        raise ValueError(f"SMOKE must be True or False, got {smoke!r}")
    raw = os.environ.get(SMOKE_ENV, "").strip().lower()
    if raw in ("1", "true", "yes"):
        return "smoke"
    if raw not in ("", "0", "false", "no"):
        raise ValueError(f"{SMOKE_ENV} must be 1 or 0, got {raw!r}")
    return "smoke" if smoke else "full"


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is one of :data:`MODES`, else raise a ``ValueError`` naming them."""
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}: expected one of {', '.join(MODES)}")
    return mode


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def _restart_needed() -> list[str]:
    """Loaded modules whose version differs from the installed one (``"numpy 1.0 loaded, ..."``)."""
    stale = []
    for module_name, distribution in RESTART_SENSITIVE.items():
        module = sys.modules.get(module_name)
        if module is None or not hasattr(module, "__version__"):
            continue
        try:
            installed = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
        loaded = str(module.__version__)
        if loaded != installed and not installed.startswith(loaded):
            stale.append(f"{module_name} {loaded} loaded, {installed} installed")
    return stale


def colab_requirements(root: Path, tf_version: str) -> tuple[list[str], list[str]]:
    """The requirements Colab needs, as ``(with_dependencies, without_dependencies)``.

    Read from ``requirements-colab.txt`` (a line whose comment says ``install: --no-deps`` goes
    to the second list), plus ``tensorflow-serving-api`` matched to Colab's TensorFlow minor
    version (unpinned, it would replace Colab's TensorFlow).
    """
    with_deps, no_deps = [], []
    for line in (Path(root) / COLAB_EXTRAS_FILE).read_text().splitlines():
        requirement, _, comment = line.partition("#")
        if requirement.strip():
            (no_deps if NO_DEPS_MARKER in comment else with_deps).append(requirement.strip())
    major_minor = ".".join(tf_version.split(".")[:2])
    with_deps.append(f"tensorflow-serving-api~={major_minor}.0")
    return with_deps, no_deps


def missing_requirements(requirements: list[str]) -> list[str]:
    """The requirements that the installed distributions do not satisfy (absent or other version)."""
    from packaging.requirements import Requirement

    missing = []
    for text in requirements:
        requirement = Requirement(text)
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(text)
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            missing.append(text)
    return missing


def _pip_install(requirements: list[str], *options: str) -> None:
    if not requirements:
        return
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-input", *options,
                           *requirements], capture_output=True, text=True)
    output = (done.stdout + done.stderr).strip()
    if done.returncode:
        raise CourseSetupError(f"Installing {' '.join(requirements)} failed:\n{output[-3000:]}")
    if "dependency conflicts" in output or "ERROR" in output:
        print(output)                        # never hide what pip says is broken


def install_colab_extras(root: Path) -> list[str]:
    """Install what Colab lacks, at the pinned versions, without touching its TensorFlow, Keras,
    tf-keras or NumPy; a second run finds everything in place and installs nothing.

    Returns the requirements that were installed.
    """
    tf_version = importlib.metadata.version("tensorflow")
    with_deps, no_deps = colab_requirements(root, tf_version)
    missing_with, missing_without = missing_requirements(with_deps), missing_requirements(no_deps)
    _pip_install(missing_with)
    _pip_install(missing_without, "--no-deps")
    installed = missing_with + missing_without
    print(f"Colab: installed {', '.join(installed)}" if installed
          else "Colab: the course's extras are already installed")
    return installed


def pinned_requirements(root: Path, names: list[str]) -> list[str]:
    """The lines of ``requirements.txt`` that pin ``names`` (``"ray[serve]"`` matches the line
    ``ray[serve]==2.60.0``); a name with no pin there raises ``KeyError``."""
    from packaging.requirements import Requirement

    pins = {}
    for line in (Path(root) / "requirements.txt").read_text().splitlines():
        text = line.partition("#")[0].strip()
        if text and not text.startswith("-"):          # options such as `-e .`
            requirement = Requirement(text)
            pins[requirement.name.lower()] = text
    found = []
    for name in names:
        key = Requirement(name).name.lower()
        if key not in pins:
            raise KeyError(f"{name} is not pinned in requirements.txt")
        found.append(pins[key])
    return found


def require_packages(names: list[str]) -> list[str]:
    """Make sure the packages one notebook alone needs (too large to install in every Colab
    notebook, e.g. Ray) are installed at the versions pinned in ``requirements.txt``.

    In Colab the missing ones are installed (a second run installs nothing); elsewhere a missing
    or different version raises :class:`CourseSetupError` naming the ``pip install`` to run.
    Returns what was installed.
    """
    requirements = pinned_requirements(course_root(), names)
    missing = missing_requirements(requirements)
    if missing and not in_colab():
        raise CourseSetupError(f"Missing or other versions: {', '.join(missing)}. Run: "
                               f"pip install -r requirements.txt (or pip install {' '.join(missing)})")
    _pip_install(missing)
    if missing:
        print(f"Colab: installed {', '.join(missing)}")
    return missing


def _set_keras_flavour(keras: str) -> None:
    if keras not in KERAS_FLAVOURS:
        raise ValueError(f"keras must be one of {KERAS_FLAVOURS}, got {keras!r}")
    wanted = "1" if keras == "2" else "0"
    current = os.environ.get("TF_USE_LEGACY_KERAS", "0")
    if "tensorflow" in sys.modules and current != wanted:
        raise CourseSetupError(
            f"TensorFlow was already imported with TF_USE_LEGACY_KERAS={current}, but this notebook "
            f"needs Keras {keras}. Restart the kernel (Kernel > Restart) and run the notebook from "
            f"the top."
        )
    os.environ["TF_USE_LEGACY_KERAS"] = wanted


def keras_module(keras: str):
    """Return the Keras module for a flavour: ``keras`` (Keras 3) or ``tf_keras`` (Keras 2)."""
    if keras == "3":
        import keras as module
    elif keras == "2":
        import tf_keras as module
    else:
        raise ValueError(f"keras must be one of {KERAS_FLAVOURS}, got {keras!r}")
    return module


def seed_everything(seed: int, keras: str = "3") -> None:
    """Seed Python, NumPy and TensorFlow through the chosen Keras flavour's ``set_random_seed``."""
    random.seed(seed)
    keras_module(keras).utils.set_random_seed(seed)


@contextlib.contextmanager
def captured_stderr(replay_on_error: bool = True):
    """Hold back what native code writes to file descriptor 2 (TensorFlow's C++ chatter).

    Python's own warnings and errors are unaffected. With ``replay_on_error`` the captured text
    is written out if the block raises, so that a real failure keeps its diagnostics.
    """
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            if replay_on_error:
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _quiet_import(keras: str) -> None:
    """Import TensorFlow and Keras with their start-up chatter held back."""
    with captured_stderr():
        import tensorflow  # noqa: F401

        keras_module(keras)


@dataclass(frozen=True)
class EnvReport:
    """What a notebook ran on; ``line()`` is the one-line form the setup prints."""

    python: str
    tensorflow: str
    keras: str
    numpy: str
    cpu_threads: int
    gpus: int
    colab: bool

    def line(self) -> str:
        gpu = f"{self.gpus} GPU" if self.gpus else "no GPU"
        where = "Colab" if self.colab else platform.system()
        return (f"Python {self.python} · TensorFlow {self.tensorflow} · {self.keras} · "
                f"NumPy {self.numpy} · {self.cpu_threads} CPU threads · {gpu} · {where}")


def report(keras: str = "3") -> EnvReport:
    """Collect the versions and hardware the notebook runs on (imports TensorFlow)."""
    import numpy as np
    import tensorflow as tf

    module = keras_module(keras)
    keras_name = f"Keras {module.__version__} ({'keras' if keras == '3' else 'tf_keras'})"
    return EnvReport(
        python=platform.python_version(),
        tensorflow=tf.__version__,
        keras=keras_name,
        numpy=np.__version__,
        cpu_threads=os.cpu_count() or 1,
        gpus=len(tf.config.list_physical_devices("GPU")),
        colab=in_colab(),
    )


def setup(keras: str = "3", seed: int = DEFAULT_SEED, deterministic: bool = True) -> EnvReport:
    """Prepare a notebook: Keras flavour, version checks, quiet logs, seeds; print a report line.

    ``keras="2"`` sets ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported, so that
    TF Model Optimization works; a kernel that already imported TensorFlow the other way is
    told to restart. In Colab the extras listed in ``requirements-colab.txt`` are installed first.
    """
    _set_keras_flavour(keras)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if in_colab():
        install_colab_extras(course_root())
    stale = _restart_needed()
    if stale:
        raise CourseSetupError(f"{RESTART_ADVICE}: " + "; ".join(stale))
    _quiet_import(keras)
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
    seed_everything(seed, keras)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    env_report = report(keras)
    print(env_report.line())
    if not tf.__version__.startswith(TESTED_TENSORFLOW):
        print(f"Note: the committed outputs come from TensorFlow {TESTED_TENSORFLOW}; with "
              f"{tf.__version__} (as in Colab) numbers may differ slightly.")
    return env_report
