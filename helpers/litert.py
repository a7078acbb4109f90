"""Converting a Keras model to LiteRT (``.tflite``) in each post-training quantization mode.

Notebook 04 explains the modes; later notebooks (QAT, pruning, clustering) reuse the same
conversion so that every compressed model is measured against the same float32 reference.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from helpers import env

MODES = ("float32", "dynamic", "float16", "int8", "int16x8")


def representative_data(images: np.ndarray) -> Iterator[list[np.ndarray]]:
    """Calibration batches of one image each, as the converter expects."""
    for image in images:
        yield [image[np.newaxis].astype(np.float32)]


def convert(model, mode: str, calibration_images: np.ndarray | None = None) -> bytes:
    """Convert ``model`` to ``.tflite`` bytes in ``mode`` (one of :data:`MODES`).

    - ``float32``: no quantization (the reference every ratio is measured against);
    - ``dynamic``: int8 weights, float activations (weights dequantized or int8 kernels at run time);
    - ``float16``: float16 weights, dequantized to float32 when the model loads;
    - ``int8``: int8 weights *and* activations, int8 input and output; needs calibration images;
    - ``int16x8``: int16 activations with int8 weights; needs calibration images.
    """
    import tensorflow as tf

    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}: expected one of {', '.join(MODES)}")
    needs_data = mode in ("int8", "int16x8")
    if needs_data and (calibration_images is None or len(calibration_images) == 0):
        raise ValueError(f"Mode {mode!r} needs calibration images (a representative data set)")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if needs_data:
        converter.representative_dataset = lambda: representative_data(calibration_images)
    if mode == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    if mode == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    # Keras prints a temporary export's endpoints; the converter's C++ side logs to stderr (its
    # errors are in the exception it raises); it warns that int8 inputs carry no statistics.
    with (contextlib.redirect_stdout(io.StringIO()), env.captured_stderr(replay_on_error=False),
          warnings.catch_warnings()):
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return converter.convert()


def convert_to_file(model, mode: str, path: Path, calibration_images: np.ndarray | None = None) -> Path:
    """:func:`convert`, written to ``path`` (folders created); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(convert(model, mode, calibration_images))
    return path


def tensor_quantization(model_path: Path, name_contains: str, ndim: int | None = None) -> dict:
    """Dtype, per-axis scales and zero points of the first tensor whose name contains a string.

    ``ndim`` narrows the match by rank (4 for a convolution kernel, 1 for its bias).
    """
    from helpers.runtimes import litert_interpreter

    for detail in litert_interpreter(model_path).get_tensor_details():
        if name_contains in detail["name"] and (ndim is None or len(detail["shape"]) == ndim):
            params = detail["quantization_parameters"]
            return {"name": detail["name"], "dtype": np.dtype(detail["dtype"]).name,
                    "shape": tuple(int(d) for d in detail["shape"]), "scales": params["scales"],
                    "zero_points": params["zero_points"], "axis": params["quantized_dimension"]}
    raise KeyError(f"No tensor named like {name_contains!r} in {model_path}")
