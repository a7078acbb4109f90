"""Inspecting and measuring compressed models (notebooks 05–07).

What a compression technique promises has to be checked in the file that ships, not in the
training model: these helpers read the weight tensors *out of a* ``.tflite`` *file* (sparsity,
distinct values, the 2:4 pattern) and measure a file's size, gzip'ed size and accuracy against
the float32 reference in one row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from helpers import bench, runtimes

#: Operators whose second input is a weight tensor (kernel), in LiteRT's layout.
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _weighted_ops(model_path: Path) -> list[tuple[str, str, np.ndarray]]:
    """``(kernel tensor name, output tensor name, kernel)`` for each conv / dense operator."""
    interpreter = runtimes.litert_interpreter(model_path)
    details = interpreter.get_tensor_details()
    ops = interpreter._get_ops_details()  # the public API has no op list; this is stable
    dequantized_from = {op["outputs"][0]: op["inputs"][0] for op in ops if op["op_name"] == "DEQUANTIZE"}
    found = []
    for op in ops:
        if op["op_name"] in WEIGHTED_OPS and len(op["inputs"]) > 1:
            index = dequantized_from.get(op["inputs"][1], op["inputs"][1])
            found.append((details[index]["name"], details[op["outputs"][0]]["name"],
                          interpreter.get_tensor(index).copy()))
    if not found:
        raise ValueError(f"No convolution or dense kernels found in {model_path}")
    return found


def tflite_kernels(model_path: Path) -> dict[str, np.ndarray]:
    """The kernels stored in a ``.tflite`` file, by tensor name, as stored (float or int8).

    LiteRT stores convolution kernels as ``[out, h, w, in]`` and dense kernels as ``[out, in]``
    (Keras: ``[h, w, in, out]`` and ``[in, out]``), so the input-channel axis is the last one.
    A float16 model feeds its operators the output of a ``DEQUANTIZE`` of each float16 kernel;
    the stored float16 tensor is returned then. (Converters name constants differently: TF 2.21
    names a kernel after its layer, TF 2.20 may call it ``arith.constant``; see
    :func:`layer_kernels` for a lookup by layer that works with both.)
    """
    return {kernel_name: kernel for kernel_name, _, kernel in _weighted_ops(model_path)}


def op_types(model_path: Path) -> list[tuple[str, str]]:
    """Each operator of a ``.tflite`` in execution order, with the dtype of its first input.

    Shows which layers run in int8 and which stay float (and where QUANTIZE/DEQUANTIZE sit).
    """
    interpreter = runtimes.litert_interpreter(model_path)
    details = interpreter.get_tensor_details()
    return [(op["op_name"], np.dtype(details[op["inputs"][0]]["dtype"]).name)
            for op in interpreter._get_ops_details()]


def sparsity(weights: np.ndarray) -> float:
    """Fraction of exact zeros (int8 kernels are symmetric, so a zero weight is stored as 0)."""
    return float(np.mean(np.asarray(weights) == 0))


def near_zero_share(weights: np.ndarray, steps: int = 1) -> float:
    """Fraction of weights that are zero, or for an integer kernel within ``steps`` of zero.

    A pruned weight should be stored as exactly 0; quantization-aware fine-tunes have been seen
    to store some as ±1 instead. Compare with :func:`sparsity` to see whether that happened.
    """
    weights = np.asarray(weights)
    if np.issubdtype(weights.dtype, np.integer):
        return float(np.mean(np.abs(weights.astype(np.int64)) <= steps))
    return sparsity(weights)


def distinct_values(weights: np.ndarray) -> int:
    """How many different values a tensor holds (clustering's promise: at most the cluster count)."""
    return int(np.unique(np.asarray(weights)).size)


def distinct_values_per_channel(weights: np.ndarray) -> int:
    """The most distinct values in any output channel (axis 0 in LiteRT's layout).

    int8 kernels have one scale per output channel, so a clustered kernel keeps at most its
    cluster count per channel even where the whole tensor holds more distinct integers.
    """
    weights = np.asarray(weights)
    return max(distinct_values(channel) for channel in weights.reshape(weights.shape[0], -1))


def m_by_n_fraction(weights: np.ndarray, m: int = 2, n: int = 4) -> float:
    """Fraction of blocks of ``n`` consecutive input-channel weights with at least ``m`` zeros.

    Expects LiteRT's layout (input channels last, see :func:`tflite_kernels`); 1.0 means the
    tensor follows the m:n pattern everywhere. Raises when the axis is not a multiple of ``n``.
    """
    weights = np.asarray(weights)
    if weights.shape[-1] % n:
        raise ValueError(f"Last axis of shape {weights.shape} is not a multiple of {n}")
    zeros_per_block = (weights.reshape(-1, n) == 0).sum(axis=1)
    return float(np.mean(zeros_per_block >= m))


def kernel_table(model_path: Path) -> dict[str, dict]:
    """Per kernel of a ``.tflite``: shape, dtype, sparsity and number of distinct values."""
    return {name: {"shape": tuple(w.shape), "dtype": w.dtype.name, "weights": int(w.size),
                   "sparsity": sparsity(w), "distinct values": distinct_values(w)}
            for name, w in tflite_kernels(model_path).items()}


def layer_kernels(model_path: Path, layer: str) -> np.ndarray:
    """The kernel of the Keras layer named ``layer`` in a ``.tflite``.

    The layer is found in the name of the kernel tensor or, where the converter gave the kernel
    a generic name (TensorFlow 2.20 writes ``arith.constant``), in the name of the operator's
    output. Keras 3 may append ``_<n>`` to layer names when it traces the model and TF-MOT's QAT
    wrappers prefix ``quant_``, so ``conv1_1`` and ``quant_conv1`` both match ``conv1``; a name
    that matches no operator, or more than one, is an error.
    """
    pattern = re.compile(rf"(^|/)(quant_)?{re.escape(layer)}(_\d+)?/")
    matches = [kernel for kernel_name, output_name, kernel in _weighted_ops(model_path)
               if pattern.search(f"{kernel_name}/") or pattern.search(f"{output_name}/")]
    if len(matches) != 1:
        raise KeyError(f"{len(matches)} kernels named like layer {layer!r} in {model_path}")
    return matches[0]


def tflite_row(model_path: Path, reference: Path, x: np.ndarray, y: np.ndarray,
               threads: int = 1) -> dict:
    """One comparison row: size and gzip size (KB), both ratios to ``reference``, test accuracy."""
    size = bench.size_report(model_path, reference=reference)
    runner = runtimes.TFLiteRunner(model_path, threads, batch_size=100)
    return {"KB": size.bytes / 1024, "gzip KB": size.gzip_bytes / 1024, "size ratio": size.ratio,
            "gzip ratio": size.gzip_ratio, "accuracy": runtimes.accuracy(runner, x, y)}


def wrap_layers(keras, model, names: Iterable[str], wrapper: Callable):
    """Clone ``model`` with ``wrapper(layer)`` applied to the layers named in ``names`` only.

    This is how TF-MOT compresses part of a model (``prune_low_magnitude``, ``cluster_weights``,
    ``quantize_annotate_layer`` all wrap one layer). The result starts from ``model``'s trained
    weights, but on a copy: training it leaves ``model`` untouched (a plain ``clone_model`` with
    a ``clone_function`` would share its layers).
    """
    names = set(names)
    missing = names - {layer.name for layer in model.layers}
    if missing:
        raise KeyError(f"No layer named {sorted(missing)} in {model.name}")
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return keras.models.clone_model(
        copy, clone_function=lambda layer: wrapper(layer) if layer.name in names else layer)


# --- Packed size and entropy: what deep compression stores (notebook 07) ----------------------

from dataclasses import dataclass  # noqa: E402  (this block is appended to the module)


@dataclass(frozen=True)
class PackedKernel:
    """The bits of one kernel stored as deep compression stores it (see :func:`pack_kernel`)."""

    weights: int
    nonzeros: int
    fillers: int
    gap_bits: int
    index_bits: int
    codebook_bits: int

    @property
    def total_bits(self) -> int:
        return (self.nonzeros + self.fillers) * (self.gap_bits + self.index_bits) + self.codebook_bits

    @property
    def bytes(self) -> int:
        return -(-self.total_bits // 8)


def _fillers(zero_runs: np.ndarray, gap_bits: int) -> int:
    """Filler entries needed when a gap field of ``gap_bits`` bits skips at most 2**bits - 1 zeros."""
    return int(np.sum(zero_runs // (1 << gap_bits)))


def pack_kernel(weights: np.ndarray, max_gap_bits: int = 8) -> PackedKernel:
    """How many bits ``weights`` take in deep compression's sparse format (Han et al., 2016).

    The kernel is read in its stored order (row-major) as a list of entries, one per non-zero
    weight, each holding:

    - a **relative position**: how many zeros to skip since the previous entry, in ``gap_bits``
      bits. A run of more than ``2**gap_bits - 1`` zeros needs *filler* entries (a zero written as
      an entry); ``gap_bits`` is the width, 1 to ``max_gap_bits``, that makes the kernel smallest
      (a kernel without zeros stores no positions);
    - a **cluster index**: ``ceil(log2(k + 1))`` bits, ``k`` the size of the largest codebook of
      non-zero values, plus one code for the fillers' zero (``ceil(log2(k))`` without zeros). For a
      sparsity-preserving clustering into ``2**b`` clusters (zero being one of them) that is ``b``.

    The **codebook** holds the distinct non-zero values. A float kernel has one codebook for the
    tensor, entries as wide as the stored values (32 bits for float32). An integer (int8) kernel
    has one codebook per output channel (axis 0, LiteRT's layout), 8-bit entries: LiteRT scales
    each channel separately, so a centroid is a different integer in each channel (the scales stay
    where the file stores them).
    """
    weights = np.asarray(weights)
    entry_bits = 8 * weights.dtype.itemsize
    nonzero = weights != 0
    if np.issubdtype(weights.dtype, np.integer) and weights.ndim > 1:
        rows, masks = weights.reshape(weights.shape[0], -1), nonzero.reshape(weights.shape[0], -1)
        codebooks = [np.unique(row[mask]).size for row, mask in zip(rows, masks)]
    else:
        codebooks = [np.unique(weights[nonzero]).size]
    largest, sparse = max(codebooks), not nonzero.all()
    symbols = largest + 1 if sparse else largest
    index_bits = int(np.ceil(np.log2(symbols))) if symbols > 1 else 0
    nonzeros, fillers, gap_bits = int(nonzero.sum()), 0, 0
    if sparse:
        positions = np.flatnonzero(nonzero.ravel())
        zero_runs = np.diff(np.concatenate([[-1], positions])) - 1   # zeros before each entry
        gap_bits = min(range(1, max_gap_bits + 1),
                       key=lambda bits: (nonzeros + _fillers(zero_runs, bits)) * (bits + index_bits))
        fillers = _fillers(zero_runs, gap_bits)
    return PackedKernel(weights=int(weights.size), nonzeros=nonzeros, fillers=fillers,
                        gap_bits=gap_bits, index_bits=index_bits,
                        codebook_bits=entry_bits * int(sum(codebooks)))


def entropy_bits(weights: np.ndarray) -> float:
    """Shannon entropy of the stored values, in bits per weight: ``-sum(p * log2(p))``.

    ``p`` is the share of each distinct value (zero included). No code that writes each weight
    on its own (Huffman coding, for instance) can use fewer bits per weight on average.
    """
    _, counts = np.unique(np.asarray(weights), return_counts=True)
    shares = counts / counts.sum()
    return float(max(0.0, -np.sum(shares * np.log2(shares))))


def packed_row(model_path: Path, layers: Iterable[str], reference: Path) -> dict:
    """A ``.tflite``'s size with the kernels of ``layers`` packed, and with them at their entropy.

    *Packed*: the file with each of those kernels replaced by :func:`pack_kernel`'s bits,
    everything else (other tensors, scales, the graph) as stored. *Entropy bound*: the same with
    each of those kernels at :func:`entropy_bits` per weight. ``packed ratio`` and ``entropy
    ratio`` are ``reference``'s size on disk (the float32 ``.tflite``) divided by these sizes;
    ``kernels packed ratio`` and ``kernels entropy ratio`` count those kernels only, against 32
    bits per weight (how Han et al. report deep compression); ``entropy (bits/weight)`` averages
    over the packed kernels' weights.
    """
    file_bytes = bench.size_on_disk(model_path)
    kernels = [layer_kernels(model_path, layer) for layer in layers]
    if not kernels:
        raise ValueError("packed_row needs at least one layer to pack")
    stored, weights = sum(kernel.nbytes for kernel in kernels), sum(kernel.size for kernel in kernels)
    packed_kernels = sum(pack_kernel(kernel).bytes for kernel in kernels)
    entropy = sum(entropy_bits(kernel) * kernel.size for kernel in kernels)
    packed, bound = file_bytes - stored + packed_kernels, file_bytes - stored + entropy / 8
    reference_bytes = bench.size_on_disk(reference)
    return {"packed KB": packed / 1024, "packed ratio": reference_bytes / packed,
            "entropy (bits/weight)": entropy / weights,
            "entropy bound KB": bound / 1024, "entropy ratio": reference_bytes / bound,
            "kernels packed ratio": 4 * weights / packed_kernels,
            "kernels entropy ratio": 32 * weights / entropy if entropy else float("inf")}
