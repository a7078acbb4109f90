import time

import pytest

from helpers import bench


def test_interleaved_ratio_finds_the_slower_callable():
    calls = []
    result = bench.interleaved({"fast": lambda: (calls.append("f"), time.sleep(0.001)),
                                "slow": lambda: (calls.append("s"), time.sleep(0.004))},
                               rounds=4, runs_per_round=3, warmup=1, threads=1)
    assert calls.count("f") == calls.count("s") == 1 + 4 * 3
    assert 2.0 < result.ratio("slow", "fast") < 6.0      # ~4x, whatever the load
    assert result.speedup("slow", "fast") == result.ratio("slow", "fast")
    assert result.latency["slow"].runs == 12 and result.latency["slow"].threads == 1
    assert 3.5 <= result.latency["slow"].median_ms <= 40  # milliseconds, not seconds or µs
    assert len(result.round_medians["fast"]) == 4


def test_interleaved_alternates_the_candidates():
    order = []
    bench.interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                      rounds=2, runs_per_round=2, warmup=0)
    assert order == ["a", "a", "b", "b", "b", "b", "a", "a"]   # the order rotates each round


def test_interleaved_needs_two_candidates():
    with pytest.raises(ValueError):
        bench.interleaved({"only": lambda: None})


def test_interleaved_table_lists_every_candidate_with_its_speed_up():
    result = bench.interleaved({"slow": lambda: time.sleep(0.003), "fast": lambda: time.sleep(0.001)},
                               rounds=3, runs_per_round=2, warmup=0)
    table = result.table(baseline="slow")
    assert list(table.index) == ["slow", "fast"]
    assert table.loc["slow", "speed-up vs slow"] == 1.0
    assert 1.5 < table.loc["fast", "speed-up vs slow"] < 6.0
    assert (table["p95 ms"] >= table["median ms"]).all() and table.loc["slow", "median ms"] >= 2.5
    assert list(result.table().columns) == ["median ms", "p95 ms"]
