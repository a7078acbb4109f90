"""ONNX plumbing: graph summaries, ONNX Runtime sessions, calibration data, timing calls.

What a notebook teaches (the export calls, the quantizer calls, the TensorRT builder) stays in
the notebook; this module holds the parts written once: reading a graph's opset, dynamic axes
and operator counts, building a CPU session with a given optimization level and thread count,
and feeding calibration images to ``onnxruntime.quantization`` (TensorRT: ``helpers.tensorrt``).
Nothing is imported at module level beyond the standard library and NumPy.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEVELS = ("disable", "basic", "extended", "all")
_LEVEL_NAMES = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
                "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def _load(model):
    import onnx

    return model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))


def op_counts(model) -> collections.Counter:
    """How many nodes of each operator a graph has (a path or an ``onnx.ModelProto``).

    Operators outside the standard domain are prefixed with it (``com.microsoft:FusedConv``), so
    that the fused kernels ONNX Runtime inserts stand out.
    """
    return collections.Counter(f"{node.domain}:{node.op_type}" if node.domain not in ("", "ai.onnx")
                               else node.op_type for node in _load(model).graph.node)


@dataclass(frozen=True)
class GraphSummary:
    """What one ONNX file holds: opset, input and output, size of the graph and its weights."""

    opset: int
    input_name: str
    input_shape: tuple
    output_name: str
    nodes: int
    parameters: int
    ops: dict
    producer: str

    @property
    def dynamic_batch(self) -> bool:
        """True when the first input dimension is symbolic (any batch size is accepted)."""
        return bool(self.input_shape) and isinstance(self.input_shape[0], str)


def summarize(model) -> GraphSummary:
    """Summarize an ONNX graph (a path or a ModelProto): the default-domain opset, the first
    input's shape (a symbolic dimension as its name, an unknown one as ``"?"``), the first
    output's name, the node count, the number of weights (float initializer values: integer
    shape and permutation constants are not weights) and the operators."""
    from onnx import numpy_helper

    proto = _load(model)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    graph_input = proto.graph.input[0]
    shape = tuple(d.dim_param or (d.dim_value if d.HasField("dim_value") else "?")
                  for d in graph_input.type.tensor_type.shape.dim)
    parameters = sum(int(numpy_helper.to_array(t).size) for t in proto.graph.initializer
                     if numpy_helper.to_array(t).dtype.kind == "f")   # not shape/permutation constants
    return GraphSummary(opset=opset, input_name=graph_input.name, input_shape=shape,
                        output_name=proto.graph.output[0].name, nodes=len(proto.graph.node),
                        parameters=parameters, ops=dict(op_counts(proto)),
                        producer=f"{proto.producer_name} {proto.producer_version}".strip())


def session(model_path: Path, threads: int | None = 1, level: str = "all",
            optimized_path: Path | None = None):
    """An ONNX Runtime CPU session with ``level`` graph optimizations (one of :data:`LEVELS`)
    and ``threads`` intra-op threads (None: ONNX Runtime's default, one per core).

    Operators run one after another (one inter-op thread), so ``threads`` is the whole thread
    count. With ``optimized_path`` the graph, as optimized for this machine, is written there
    (at level ``"all"`` it may hold layouts for this CPU only: inspect it, ship the original).
    """
    import onnxruntime as ort

    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"No ONNX model at {model_path}")
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVEL_NAMES[level])
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = threads
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
        options.log_severity_level = 3   # not the warning that the saved graph is hardware-specific
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def calibration_reader(images: np.ndarray, input_name: str, batch_size: int = 100):
    """A ``CalibrationDataReader`` for ``onnxruntime.quantization.quantize_static`` that yields
    ``images`` (float32, N×...) in batches of ``batch_size`` under ``input_name``, once."""
    from onnxruntime.quantization import CalibrationDataReader

    if len(images) == 0 or batch_size < 1:
        raise ValueError("calibration needs at least one image and batch_size >= 1")

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{input_name: np.ascontiguousarray(images[i:i + batch_size],
                                                                   dtype=np.float32)}
                                 for i in range(0, len(images), batch_size)])

        def get_next(self):
            return next(self.batches, None)

    return _Reader()


def batch_call(model_path: Path, images: np.ndarray, threads: int = 1):
    """A zero-argument callable that runs ``images`` (one pre-sized batch) through an ``.onnx``
    (ONNX Runtime session) or a ``.tflite`` (LiteRT interpreter sized to the batch, input
    quantization and output dequantization included): the same thin call for every runtime,
    for ``bench.interleaved``."""
    from helpers import runtimes

    model_path = Path(model_path)
    if model_path.suffix == ".onnx":
        ort_session = session(model_path, threads=threads)
        name = ort_session.get_inputs()[0].name
        return lambda: ort_session.run(None, {name: images})[0]
    if model_path.suffix == ".tflite":
        runner = runtimes.TFLiteRunner(model_path, threads, batch_size=len(images))
        return lambda: runner.invoke(images)
    raise ValueError(f"batch_call takes .onnx or .tflite files, got {model_path.name}")


def ratio_range(timing, numerator: str, denominator: str) -> tuple[float, float]:
    """The interquartile range (25th, 75th percentile) of per-round time ratios
    ``numerator``/``denominator`` of a ``bench.interleaved`` result: how much a ratio moves
    between rounds, i.e. what counts as noise on this machine."""
    a = np.asarray(timing.round_medians[numerator])
    b = np.asarray(timing.round_medians[denominator])
    low, high = np.percentile(a / b, [25, 75])
    return float(low), float(high)


def int8_ops_as_run(model_path: Path, as_run: Path, threads: int = 1) -> dict:
    """The quantization-related operators (``QuantizeLinear``, ``ConvInteger``, ``QLinearConv``,
    ``QGemm``, ...) of the graph ONNX Runtime actually runs for ``model_path`` on this CPU, after
    its fusions (the optimized graph is written to ``as_run``), with their counts."""
    session(model_path, threads=threads, optimized_path=as_run)
    return {op: n for op, n in sorted(op_counts(as_run).items())
            if "quantize" in op.lower() or "Integer" in op or op.startswith("com.microsoft:Q")}


def check_and_compare(model_path: Path, images: np.ndarray, reference: np.ndarray, threads: int = 1) -> dict:
    """One table row for an exported file: ``onnx.checker`` (full check; raises if invalid), its
    opset, input, dynamic batch, output name, node and float-weight counts, and its parity with
    ``reference`` (the source model's outputs on ``images``) when ONNX Runtime runs it."""
    import onnx

    from helpers import runtimes

    onnx.checker.check_model(onnx.load(str(model_path)), full_check=True)
    graph = summarize(model_path)
    outputs = session(model_path, threads=threads).run(None, {graph.input_name: images})[0]
    return {"opset": graph.opset, "input": f"{graph.input_name} {graph.input_shape}",
            "dynamic batch": graph.dynamic_batch, "output": graph.output_name, "nodes": graph.nodes,
            "float weights": graph.parameters, **runtimes.parity(reference, outputs)}
