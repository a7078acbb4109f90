"""helpers.llmmemory: weights, KV cache and what fits, against values computed by hand."""

import pytest

from helpers import llmmemory
from helpers.llmmemory import LLAMA2, DecoderConfig


def test_weight_bytes_per_dtype():
    assert llmmemory.weight_bytes(7_000_000_000, "fp16") == 14e9
    assert llmmemory.weight_bytes(7_000_000_000, "int8") == 7e9
    assert llmmemory.weight_bytes(7_000_000_000, "int4") == 3.5e9
    assert llmmemory.weight_bytes(LLAMA2["7B"].parameters, "fp16") == 13_476_831_232
    with pytest.raises(ValueError, match="Unknown dtype"):
        llmmemory.weight_bytes(10, "fp8x")
    with pytest.raises(ValueError, match="parameters"):
        llmmemory.weight_bytes(-1, "fp16")


@pytest.mark.parametrize("key, expected", [
    ("7B", 524_288),      # 2 x 32 layers x 32 heads x 128 x 2 bytes = 0.5 MiB per token
    ("13B", 819_200),     # 2 x 40 x 40 x 128 x 2
    ("70B", 327_680),     # GQA: 2 x 80 x 8 KV heads x 128 x 2 (less than 7B's)
])
def test_kv_bytes_per_token_llama2(key, expected):
    config = LLAMA2[key]
    assert llmmemory.kv_bytes_per_token(config.layers, config.kv_heads, config.head_dim) == expected


def test_kv_cache_scales_with_sequence_batch_and_dtype():
    # GPT-2 small in float32: 2 x 12 x 12 x 64 x 4 = 73,728 bytes per token
    assert llmmemory.kv_cache_bytes(12, 12, 64, sequence=1, dtype="fp32") == 73_728
    assert llmmemory.kv_cache_bytes(12, 12, 64, sequence=128, batch=8, dtype="fp32") == 73_728 * 1024
    assert llmmemory.kv_cache_bytes(32, 32, 128, 4096) == 2 ** 31      # 7B, 4k tokens: 2 GiB
    assert llmmemory.kv_cache_bytes(32, 32, 128, 4096, dtype="int8") == 2 ** 30
    with pytest.raises(ValueError):
        llmmemory.kv_bytes_per_token(0, 8, 128)
    with pytest.raises(ValueError):
        llmmemory.kv_cache_bytes(1, 1, 1, sequence=-1)


def test_concurrent_requests_hand_computed():
    gib = 2 ** 30
    # 7B fp16 on 80 GiB: (72 GiB - 13,476,831,232) / 2,147,483,648 = 29.72 -> 29
    assert llmmemory.concurrent_requests(80, LLAMA2["7B"], "fp16", 4096) == 29
    # 70B fp16 (128.5 GiB) does not fit on 80 GiB nor on an H200's 140.4 GiB (126.4 GiB usable)
    assert llmmemory.concurrent_requests(80, LLAMA2["70B"], "fp16", 4096) == 0
    assert llmmemory.concurrent_requests(140.4, LLAMA2["70B"], "fp16", 4096) == 0
    # 70B int4 on 80 GiB: (72 GiB - 34,488,324,096) / 1,342,177,280 = 31.9 -> 31
    assert llmmemory.concurrent_requests(80, LLAMA2["70B"], "int4", 4096) == 31
    # 70B int8 on 80 GiB: 6 (with 10^9-byte GB it would be 2)
    assert llmmemory.concurrent_requests(80, LLAMA2["70B"], "int8", 4096) == 6
    # no reserve: (80 GiB - 13,476,831,232) / 2,147,483,648 = 33.7 -> 33
    assert llmmemory.concurrent_requests(80, LLAMA2["7B"], "fp16", 4096, reserve_fraction=0) == 33
    assert (80 * gib - 13_476_831_232) // 2 ** 31 == 33
    # a shorter context fits proportionally more requests
    assert llmmemory.concurrent_requests(80, LLAMA2["7B"], "fp16", 1024) == 118
    with pytest.raises(ValueError):
        llmmemory.concurrent_requests(80, LLAMA2["7B"], "fp16", 0)


def test_budget_table_rows_and_columns():
    tiny = {"t": DecoderConfig("tiny", 2 ** 30, layers=2, heads=2, kv_heads=1, head_dim=4)}
    table = llmmemory.budget_table(tiny, dtypes=("fp16", "int4"), memories_gib=(1, 24), context=1000)
    assert list(table.index) == [("t", "fp16"), ("t", "int4")]
    assert table.loc[("t", "fp16"), "weights GiB"] == 2.0
    assert table.loc[("t", "int4"), "weights GiB"] == 0.5
    assert table.loc[("t", "fp16"), "requests on 1 GiB"] == 0                 # 2 GiB of weights
    per_request = 2 * 2 * 1 * 4 * 2 * 1000                                       # 32,000 bytes
    assert table.loc[("t", "int4"), "requests on 1 GiB"] == int((0.4 * 2 ** 30) // per_request)
    assert table.loc[("t", "fp16"), "KV MiB/token"] == pytest.approx(32 / 2 ** 20)
