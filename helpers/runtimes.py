"""One interface over the runtimes a model meets: Keras, SavedModel, LiteRT (``.tflite``), ONNX.

Each runner maps a float32 batch (N×28×28×1 in [0, 1]) to float32 outputs (N×classes), so that
accuracy and parity checks are written once. Version-sensitive APIs are wrapped here once:
the LiteRT interpreter comes from ``ai_edge_litert`` and falls back to ``tf.lite.Interpreter``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

KERNELS = ("default", "builtin")


def litert_interpreter(model_path: Path, num_threads: int | None = None, kernels: str = "default"):
    """A LiteRT interpreter for ``model_path`` (``ai_edge_litert``, else ``tf.lite.Interpreter``).

    ``kernels="default"`` lets LiteRT apply its default CPU delegate (XNNPACK);
    ``kernels="builtin"`` runs LiteRT's own built-in kernels without it
    (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``), to see how much the kernel library decides.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"No .tflite model at {model_path}")
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {KERNELS}, got {kernels!r}")
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:  # older stacks: the same interpreter inside TensorFlow
        import tensorflow as tf

        Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    resolver = (OpResolverType.AUTO if kernels == "default"
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    return Interpreter(model_path=str(model_path), num_threads=num_threads,
                       experimental_op_resolver_type=resolver)


class KerasRunner:
    """Runs a Keras model (either flavour) in inference mode."""

    def __init__(self, model, batch_size: int = 512):
        self.model, self.batch_size = model, batch_size

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(x, batch_size=self.batch_size, verbose=0))


class SavedModelRunner:
    """Runs one signature of a SavedModel (the way TF Serving calls it).

    ``output`` names the signature output to return; it may be omitted only when the signature
    has a single output, so that a multi-output signature is never read from the wrong key.
    """

    def __init__(self, path: Path, signature: str = "serving_default", output: str | None = None,
                 batch_size: int = 512):
        import tensorflow as tf

        self.loaded = tf.saved_model.load(str(path))
        if signature not in self.loaded.signatures:
            raise KeyError(f"{path} has no signature {signature!r}; it has "
                           f"{sorted(self.loaded.signatures)}")
        self.fn = self.loaded.signatures[signature]
        self.input_name = next(iter(self.fn.structured_input_signature[1]))
        outputs = sorted(self.fn.structured_outputs)
        if output is None and len(outputs) != 1:
            raise KeyError(f"Signature {signature!r} has outputs {outputs}: name one with output=")
        if output is not None and output not in outputs:
            raise KeyError(f"Signature {signature!r} has no output {output!r}; it has {outputs}")
        self.output = output or outputs[0]
        self.batch_size = batch_size

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([
            self.fn(**{self.input_name: x[start:start + self.batch_size]})[self.output].numpy()
            for start in range(0, len(x), self.batch_size)])


class TFLiteRunner:
    """Runs a ``.tflite`` model, quantizing inputs and dequantizing outputs when they are integer.

    The batch dimension is resized to ``batch_size`` once; a final partial batch is padded.
    ``kernels`` is passed to :func:`litert_interpreter`.
    """

    def __init__(self, model_path: Path, num_threads: int | None = None, batch_size: int = 1,
                 kernels: str = "default"):
        self.path, self.num_threads, self.batch_size = Path(model_path), num_threads, batch_size
        self.interpreter = litert_interpreter(self.path, num_threads, kernels)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        if batch_size != self.input["shape"][0]:
            self.interpreter.resize_tensor_input(self.input["index"],
                                                 [batch_size, *self.input["shape"][1:]])
        self.interpreter.allocate_tensors()

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if np.issubdtype(dtype, np.integer):
            scale, zero_point = self.input["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
        return x.astype(dtype)

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        if np.issubdtype(y.dtype, np.integer):
            scale, zero_point = self.output["quantization"]
            return (y.astype(np.float32) - zero_point) * scale
        return y.astype(np.float32)

    def set_input(self, batch: np.ndarray) -> None:
        """Quantize (if the input is integer) and copy one batch of ``batch_size`` rows in."""
        self.interpreter.set_tensor(self.input["index"], self._quantize(batch))

    def invoke(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch of exactly ``batch_size`` rows, including input and output conversion."""
        self.set_input(batch)
        self.interpreter.invoke()
        return self._dequantize(self.interpreter.get_tensor(self.output["index"]))

    def predict(self, x: np.ndarray) -> np.ndarray:
        outputs = []
        for start in range(0, len(x), self.batch_size):
            batch = x[start:start + self.batch_size]
            pad = self.batch_size - len(batch)
            if pad:
                batch = np.concatenate([batch, np.zeros((pad, *batch.shape[1:]), batch.dtype)])
            outputs.append(self.invoke(batch)[:self.batch_size - pad])
        return np.concatenate(outputs)


class OnnxRunner:
    """Runs an ONNX model with ONNX Runtime on the CPU (first input, first output).

    ``threads`` (intra-op threads; None: ONNX Runtime's default) and ``level`` (graph
    optimizations, one of ``onnxtools.LEVELS``) are passed to :func:`helpers.onnxtools.session`.
    """

    def __init__(self, model_path: Path, threads: int | None = None, level: str = "all"):
        from helpers import onnxtools

        self.threads, self.level = threads, level
        self.session = onnxtools.session(Path(model_path), threads=threads, level=level)
        self.input_name = self.session.get_inputs()[0].name

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]


def tflite_scores(model_path: Path, x: np.ndarray, threads: int = 1, batch_size: int = 100) -> np.ndarray:
    """The outputs (dequantized, float32) of a ``.tflite`` for images ``x``, in batches."""
    return TFLiteRunner(model_path, threads, batch_size=batch_size).predict(x)


def tflite_invoke(model_path: Path, image: np.ndarray, threads: int = 1, kernels: str = "default"):
    """``interpreter.invoke`` of a batch-1 interpreter whose input is already set to ``image[:1]``:
    the call to time for a model's own compute (``bench.interleaved`` takes such callables)."""
    runner = TFLiteRunner(model_path, threads, batch_size=1, kernels=kernels)
    runner.set_input(image[:1])
    return runner.interpreter.invoke


def tflite_latency(model_path: Path, image: np.ndarray, threads: int = 1, runs: int = 500,
                   warmup: int = 20):
    """Batch-1 latency of ``interpreter.invoke()`` alone (the input is set once beforehand).

    Quantizing the input is a few microseconds of NumPy, measured separately where it matters (04).
    """
    from helpers import bench

    return bench.measure_latency(tflite_invoke(model_path, image, threads), runs=runs,
                                 warmup=warmup, threads=threads)


def accuracy(runner, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of any runner above on images ``x`` (float, N×28×28×1) and labels ``y``."""
    predictions = runner.predict(x)
    if len(predictions) != len(y):
        raise ValueError(f"{len(predictions)} predictions for {len(y)} labels")
    return float(np.mean(np.argmax(predictions, axis=1) == y))


def parity(reference: np.ndarray, other: np.ndarray) -> dict:
    """Compare two runtimes' outputs: max absolute difference and top-1 agreement."""
    if reference.shape != other.shape:
        raise ValueError(f"Output shapes differ: {reference.shape} vs {other.shape}")
    return {"max_abs_diff": float(np.max(np.abs(reference - other))),
            "top1_agreement": float(np.mean(reference.argmax(1) == other.argmax(1)))}
