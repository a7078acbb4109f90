"""TensorRT plumbing: whether it can run here, engine builder with a content-keyed cache, ONNX
Runtime's TensorRT provider options, chunked GPU prediction, and the symmetric int8 QDQ file
TensorRT needs.

TensorRT accepts only *symmetric* int8 quantization (every zero point 0); ONNX Runtime's
``quantize_static`` defaults to asymmetric activations, so a TensorRT int8 engine needs its own
file (:func:`write_symmetric_qdq`, checked by :func:`asymmetric_zero_points`). An engine is valid
for one ONNX file, one TensorRT version and one GPU model, so its cache name holds all three
(:func:`engine_path`). ``tensorrt`` is imported only inside :func:`build_engine`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np


def tensorrt_status() -> tuple[bool, str]:
    """Whether a TensorRT path can run here, and a sentence saying why (not).

    It needs an NVIDIA GPU (``nvidia-smi`` on the path) and either the ``tensorrt`` Python package
    or ONNX Runtime's TensorRT execution provider (``onnxruntime-gpu``).
    """
    if shutil.which("nvidia-smi") is None:
        return False, "no NVIDIA GPU here (nvidia-smi not found)"
    has_trt = importlib.util.find_spec("tensorrt") is not None
    try:
        import onnxruntime as ort

        has_ep = "TensorrtExecutionProvider" in ort.get_available_providers()
    except ImportError:
        has_ep = False
    if not (has_trt or has_ep):
        return False, ("an NVIDIA GPU is present, but neither the `tensorrt` package nor "
                       "onnxruntime-gpu's TensorrtExecutionProvider is installed")
    found = [name for name, ok in (("tensorrt", has_trt), ("TensorrtExecutionProvider", has_ep)) if ok]
    return True, "NVIDIA GPU with " + " and ".join(found)


def tensorrt_provider_options(input_name: str, sample_shape: tuple, cache_dir: Path,
                              batches: tuple[int, int, int] = (1, 32, 256), fp16: bool = True,
                              int8: bool = False) -> dict:
    """Options for ONNX Runtime's ``TensorrtExecutionProvider``: FP16/INT8 switches, an
    optimization profile for a dynamic batch (min, opt, max batch of ``sample_shape`` images)
    and an engine cache in ``cache_dir``, so that the engine is built once, not per session."""
    low, opt, high = batches
    if not 1 <= low <= opt <= high:
        raise ValueError(f"batches must satisfy 1 <= min <= opt <= max, got {batches}")

    def shape(batch):
        return f"{input_name}:" + "x".join(str(d) for d in (batch, *sample_shape))

    return {"trt_fp16_enable": fp16, "trt_int8_enable": int8,
            "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir),
            "trt_profile_min_shapes": shape(low), "trt_profile_opt_shapes": shape(opt),
            "trt_profile_max_shapes": shape(high)}


def gpu_name() -> str:
    """The first NVIDIA GPU's model name from ``nvidia-smi``, or ``"no-gpu"``."""
    if shutil.which("nvidia-smi") is None:
        return "no-gpu"
    done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                          capture_output=True, text=True, timeout=30)
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else "unknown-gpu"


def engine_path(cache_dir: Path, onnx_path: Path, precision: str, trt_version: str, gpu: str) -> Path:
    """Where the engine for ``onnx_path`` is cached: the name holds a hash of the file's bytes,
    the precision, the TensorRT version and the GPU, so a changed file, another TensorRT or
    another GPU never loads a stale engine."""
    digest = hashlib.sha256(Path(onnx_path).read_bytes()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", f"{precision}_trt{trt_version}_{gpu}").strip("-")
    return Path(cache_dir) / f"{Path(onnx_path).stem}_{digest}_{slug}.engine"


def predict_in_chunks(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, max_batch: int) -> np.ndarray:
    """``run`` over ``x`` in chunks of at most ``max_batch`` rows (an engine's optimization
    profile refuses larger batches), outputs concatenated in order."""
    if max_batch < 1:
        raise ValueError("max_batch must be >= 1")
    return np.concatenate([run(x[i:i + max_batch]) for i in range(0, len(x), max_batch)])


def write_symmetric_qdq(prepared: Path, output: Path, calibration: np.ndarray, input_name: str) -> Path:
    """A static int8 QDQ file TensorRT accepts: int8 activations and per-channel int8 weights,
    both symmetric (zero points 0), calibrated on ``calibration`` images."""
    from onnxruntime import quantization

    from helpers import onnxtools

    quantization.quantize_static(
        str(prepared), str(output), onnxtools.calibration_reader(calibration, input_name),
        quant_format=quantization.QuantFormat.QDQ, per_channel=True,
        activation_type=quantization.QuantType.QInt8, weight_type=quantization.QuantType.QInt8,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    return Path(output)


def asymmetric_zero_points(model_path: Path) -> list[str]:
    """Names of the Quantize/DequantizeLinear zero points that are not all 0 (TensorRT's
    parser refuses such a file); an empty list means the file is symmetric."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(model_path))
    inits = {t.name: t for t in proto.graph.initializer}
    names = {n.input[2] for n in proto.graph.node
             if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2}
    return sorted(name for name in names
                  if name in inits and np.any(numpy_helper.to_array(inits[name]) != 0))


def build_engine(onnx_path: Path, cache_dir: Path, precision: str, input_name: str,
                 sample_shape: tuple, batches: tuple[int, int, int]):
    """TensorRT 10: parse ``onnx_path``, add a dynamic-batch profile (min, opt, max of
    ``batches``), build with FP16 (and INT8 from the file's QDQ scales for ``"int8"``) and cache
    the serialized engine under :func:`engine_path`. Returns (engine, path, built now)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    path = engine_path(cache_dir, onnx_path, precision, trt.__version__, gpu_name())
    if path.exists():
        return trt.Runtime(logger).deserialize_cuda_engine(path.read_bytes()), path, False
    builder = trt.Builder(logger)
    network = builder.create_network(0)                        # explicit batch: TensorRT 10's only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        raise RuntimeError("; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
    config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, *[(b, *sample_shape) for b in batches])
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT could not build a {precision} engine from {onnx_path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(serialized))
    return trt.Runtime(logger).deserialize_cuda_engine(bytes(serialized)), path, True


def provider_session(model_path: Path, cache_dir: Path, input_name: str, sample_shape: tuple,
                     batches: tuple[int, int, int], int8: bool = False):
    """An ONNX Runtime session on ``TensorrtExecutionProvider`` (FP16, INT8 for a QDQ file with
    ``int8``; dynamic-batch profile ``batches``; engines cached in ``cache_dir``), falling back
    to the CUDA provider for any node TensorRT does not take."""
    import onnxruntime as ort


    options = tensorrt_provider_options(input_name, sample_shape, cache_dir, batches,
                                                  fp16=True, int8=int8)
    return ort.InferenceSession(str(model_path), providers=[("TensorrtExecutionProvider", options),
                                                            "CUDAExecutionProvider"])
