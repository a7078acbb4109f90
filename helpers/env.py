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
# Packages whose in-memory version must equal the installed one; a mismatch means a
# `pip install` upgraded them after they were imported, and only a restart fixes that.
_RESTART_SENSITIVE = ("numpy", "tensorflow", "keras", "tf_keras", "protobuf")
_DIST_NAMES = {"tf_keras": "tf-keras"}
# What Colab lacks (TensorFlow itself is preinstalled there and is never reinstalled).
COLAB_EXTRAS_FILE = "requirements-colab.txt"


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
    stale = []
    for module_name in _RESTART_SENSITIVE:
        module = sys.modules.get(module_name)
        if module is None or not hasattr(module, "__version__"):
            continue
        try:
            installed = importlib.metadata.version(_DIST_NAMES.get(module_name, module_name))
        except importlib.metadata.PackageNotFoundError:
            continue
        loaded = str(module.__version__)
        if loaded != installed and not installed.startswith(loaded):
            stale.append(f"{module_name} {loaded} loaded, {installed} installed")
    return stale


def install_colab_extras(root: Path) -> None:
    """Install what Colab lacks, without touching its TensorFlow (tf-keras and
    tensorflow-serving-api, which depend on TensorFlow, are pinned to its version)."""
    tf_version = importlib.metadata.version("tensorflow")
    major_minor = ".".join(tf_version.split(".")[:2])
    cmd = [sys.executable, "-m", "pip", "install", "-q", "-r", str(root / COLAB_EXTRAS_FILE),
           f"tf-keras~={major_minor}.0", f"tensorflow-serving-api~={major_minor}.0"]
    subprocess.run(cmd, check=True)


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
        raise CourseSetupError("Restart the runtime, then run this notebook again from the top: "
                               + "; ".join(stale))
    _quiet_import(keras)
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
    if not tf.__version__.startswith(TESTED_TENSORFLOW):
        warnings.warn(f"The course is tested on TensorFlow {TESTED_TENSORFLOW}; this is "
                      f"{tf.__version__}. Numbers may differ.", stacklevel=2)
    seed_everything(seed, keras)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    env_report = report(keras)
    print(env_report.line())
    return env_report
