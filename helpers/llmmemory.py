"""Memory arithmetic of serving a large language model: weights, KV cache, what fits.

Two formulas decide how a decoder-only transformer is served:

- **weights**: ``parameters × bytes per parameter`` (fp16/bf16 2, int8 1, int4 0.5), plus the
  quantization scales (small; left out here, as in most budgets);
- **KV cache**: every layer keeps a key and a value vector per KV head for every token of every
  request, so per token ``2 × layers × kv_heads × head_dim × bytes`` (the factor 2: K and V), and
  per request that times the sequence length. With multi-head attention ``kv_heads = heads``;
  grouped-query attention (GQA; Ainslie et al. 2023, arXiv:2305.13245) shares each K/V head among
  several query heads, which divides the cache by ``heads / kv_heads``. The formula is the one of
  Pope et al. 2022, "Efficiently Scaling Transformer Inference" (arXiv:2211.05102) and of vLLM's
  paper (Kwon et al. 2023, arXiv:2309.06180, section 2.3).

The configurations are Llama 2's (Touvron et al. 2023, arXiv:2307.09288, table 1 and section 2.2:
GQA for 70B) with the shapes of the published ``config.json`` files (hidden 4096/5120/8192,
32/40/80 layers, 32/40/64 heads, 8 KV heads for 70B, head_dim 128). Every size here is in GiB
(2^30 bytes): an accelerator sold as "80 GB" reports about 80 GiB (81,559-81,920 MiB), a "24 GB"
card about 24 GiB (24,564 MiB), an H200 ("141 GB") 143,771 MiB = 140.4 GiB. Counting its memory
as 10^9-byte GB would understate it by about 7%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BYTES_PER_PARAMETER = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5}
GIB = 2 ** 30


@dataclass(frozen=True)
class DecoderConfig:
    """The shapes of a decoder-only transformer that set its memory."""

    name: str
    parameters: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int


LLAMA2 = {
    "7B": DecoderConfig("Llama-2-7B", 6_738_415_616, layers=32, heads=32, kv_heads=32, head_dim=128),
    "13B": DecoderConfig("Llama-2-13B", 13_015_864_320, layers=40, heads=40, kv_heads=40, head_dim=128),
    "70B": DecoderConfig("Llama-2-70B", 68_976_648_192, layers=80, heads=64, kv_heads=8, head_dim=128),
}


def bytes_per_parameter(dtype: str) -> float:
    """Bytes one weight takes in ``dtype`` (``fp32``, ``fp16``, ``bf16``, ``int8``, ``int4``)."""
    if dtype not in BYTES_PER_PARAMETER:
        raise ValueError(f"Unknown dtype {dtype!r}: use one of {sorted(BYTES_PER_PARAMETER)}")
    return BYTES_PER_PARAMETER[dtype]


def weight_bytes(parameters: int, dtype: str) -> float:
    """Bytes of the weights alone: ``parameters × bytes_per_parameter(dtype)``."""
    if parameters < 0:
        raise ValueError(f"parameters must be >= 0, got {parameters}")
    return parameters * bytes_per_parameter(dtype)


def kv_bytes_per_token(layers: int, kv_heads: int, head_dim: int, dtype: str = "fp16") -> float:
    """KV-cache bytes one token adds: ``2 × layers × kv_heads × head_dim × bytes``."""
    if min(layers, kv_heads, head_dim) < 1:
        raise ValueError(f"layers, kv_heads and head_dim must be >= 1, got {layers}, {kv_heads}, {head_dim}")
    return 2 * layers * kv_heads * head_dim * bytes_per_parameter(dtype)


def kv_cache_bytes(layers: int, kv_heads: int, head_dim: int, sequence: int, batch: int = 1,
                   dtype: str = "fp16") -> float:
    """KV-cache bytes of ``batch`` requests of ``sequence`` tokens each (prompt + generated)."""
    if sequence < 0 or batch < 0:
        raise ValueError(f"sequence and batch must be >= 0, got {sequence}, {batch}")
    return kv_bytes_per_token(layers, kv_heads, head_dim, dtype) * sequence * batch


def concurrent_requests(memory_gib: float, config: DecoderConfig, weight_dtype: str, context: int,
                        kv_dtype: str = "fp16", reserve_fraction: float = 0.1) -> int:
    """How many requests of ``context`` tokens fit beside the weights on one accelerator.

    ``reserve_fraction`` of the memory is kept for activations, the runtime and fragmentation
    (outside vLLM's default ``gpu_memory_utilization=0.9``; vLLM then profiles its peak activations
    *inside* the 90 %, so the count is an upper bound). ``memory_gib``: the accelerator's memory in
    GiB (2^30 bytes). 0 when the weights do not fit.
    """
    if memory_gib <= 0 or context < 1 or not 0 <= reserve_fraction < 1:
        raise ValueError(f"need memory_gib > 0, context >= 1, 0 <= reserve_fraction < 1; got "
                         f"{memory_gib}, {context}, {reserve_fraction}")
    free = memory_gib * GIB * (1 - reserve_fraction) - weight_bytes(config.parameters, weight_dtype)
    if free <= 0:
        return 0
    per_request = kv_cache_bytes(config.layers, config.kv_heads, config.head_dim, context, 1, kv_dtype)
    return int(math.floor(free / per_request))


def budget_table(configs: dict[str, DecoderConfig], dtypes=("fp16", "int8", "int4"),
                 memories_gib=(24, 80, 140.4), context: int = 4096, reserve_fraction: float = 0.1):
    """One row per (model, weight dtype): weights in GiB, KV cache per token (MiB) and per
    request of ``context`` tokens (GiB, fp16 cache), and the concurrent requests on each
    accelerator of ``memories_gib`` GiB (upper bounds: see :func:`concurrent_requests`)."""
    import pandas as pd

    rows = []
    for key, config in configs.items():
        per_token = kv_bytes_per_token(config.layers, config.kv_heads, config.head_dim)
        for dtype in dtypes:
            row = {"model": key, "weights": dtype,
                   "weights GiB": weight_bytes(config.parameters, dtype) / GIB,
                   "KV MiB/token": per_token / 2 ** 20,
                   f"KV GiB/request ({context:,} tok)": per_token * context / GIB}
            for memory in memories_gib:
                row[f"requests on {memory:g} GiB"] = concurrent_requests(memory, config, dtype, context,
                                                                      reserve_fraction=reserve_fraction)
            rows.append(row)
    return pd.DataFrame(rows).set_index(["model", "weights"])
