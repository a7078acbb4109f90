"""Latency statistics and sizes: exact values where a fake clock allows, real units both ways."""

import gzip
import os
import time
import types

import numpy as np
import pytest

from helpers import bench


class FakeClock:
    """A ``perf_counter`` that only moves when the timed function says how long it took."""

    def __init__(self):
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_measure_latency_statistics_are_exact_milliseconds(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    durations_ms = [5.0] * 3 + list(np.arange(1.0, 21.0))       # 3 warm-up calls, then 1..20 ms
    calls = iter(durations_ms)
    stats = bench.measure_latency(lambda: clock.advance(next(calls) / 1000), runs=20, warmup=3,
                                  threads=2)
    timed = np.arange(1.0, 21.0)
    assert stats.median_ms == pytest.approx(10.5)                # not seconds, not µs
    assert stats.p95_ms == pytest.approx(np.percentile(timed, 95))   # 19.05: p95 is not the max
    assert stats.mean_ms == pytest.approx(10.5)
    assert (stats.runs, stats.warmup, stats.threads) == (20, 3, 2)
    assert stats.as_dict() == {"median_ms": stats.median_ms, "p95_ms": stats.p95_ms,
                               "mean_ms": stats.mean_ms, "runs": 20, "warmup": 3, "threads": 2}


def test_warm_up_calls_are_not_timed(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    calls = iter([0.5] * 4 + [0.002] * 6)                        # slow warm-up (s), fast runs
    stats = bench.measure_latency(lambda: clock.advance(next(calls)), runs=6, warmup=4)
    assert stats.median_ms == pytest.approx(2.0) and stats.p95_ms == pytest.approx(2.0)


def test_measure_latency_on_a_real_sleep_is_bounded_both_sides():
    stats = bench.measure_latency(lambda: time.sleep(0.002), runs=20, warmup=2, threads=1)
    assert stats.runs == 20 and stats.threads == 1
    # 2 ms of sleep: at least 1.9 ms (not seconds, not a constant), well under 2 s (not µs as ms).
    assert 1.9 <= stats.median_ms <= stats.p95_ms < 200
    assert 1.9 <= stats.mean_ms < 200


def test_latency_text_states_numbers_runs_and_threads():
    latency = bench.Latency(1.23456, 2.5, 1.5, runs=7, warmup=2, threads=1)
    text = str(latency)
    assert "median 1.235 ms" in text and "p95 2.500 ms" in text
    assert "7 runs after 2 warm-up" in text and "1 thread(s)" in text
    assert "threads: runtime default" in str(bench.Latency(1, 1, 1, 1, 0, None))


def test_measure_latency_counts_calls():
    calls = []
    bench.measure_latency(lambda: calls.append(1), runs=5, warmup=3)
    assert len(calls) == 8
    with pytest.raises(ValueError):
        bench.measure_latency(lambda: None, runs=0)
    with pytest.raises(ValueError):
        bench.measure_latency(lambda: None, runs=3, warmup=-1)


def _real_gzip_size(content: bytes) -> int:
    """What gzip at level 9 makes of ``content`` (no file name, no time stamp in the header)."""
    packed = gzip.compress(content, compresslevel=9, mtime=0)
    assert gzip.decompress(packed) == content
    return len(packed)


def test_sizes_of_file_and_folder(tmp_path):
    zeros = tmp_path / "zeros.bin"
    zeros.write_bytes(bytes(100_000))
    noise = tmp_path / "folder" / "noise.bin"
    noise.parent.mkdir()
    noise_bytes = np.random.default_rng(0).integers(0, 256, 10_240, dtype=np.uint8).tobytes()
    noise.write_bytes(noise_bytes)
    assert bench.size_on_disk(zeros) == 100_000
    assert bench.size_on_disk(tmp_path) == 100_000 + 10_240   # folders are summed
    # gzip sizes are what real gzip (level 9) writes, header included: zeros shrink, noise grows.
    assert bench.gzip_size(zeros) == _real_gzip_size(bytes(100_000)) < 1_000
    assert bench.gzip_size(noise) == _real_gzip_size(noise_bytes) > 10_240
    assert bench.gzip_size(tmp_path) == bench.gzip_size(zeros) + bench.gzip_size(noise)
    with pytest.raises(FileNotFoundError):
        bench.size_on_disk(tmp_path / "absent")
    with pytest.raises(FileNotFoundError):
        bench.gzip_size(tmp_path / "absent")


def test_size_report_ratios_say_how_many_times_smaller(tmp_path):
    big, small = tmp_path / "big.bin", tmp_path / "small.bin"
    big.write_bytes(os.urandom(40_000))
    small.write_bytes(bytes(10_000))
    report = bench.size_report(small, reference=big)
    assert (report.bytes, report.gzip_bytes) == (10_000, bench.gzip_size(small))
    assert report.ratio == pytest.approx(4.0)                 # reference / path, not the inverse
    assert report.gzip_ratio == pytest.approx(bench.gzip_size(big) / bench.gzip_size(small))
    assert report.gzip_ratio > 100                             # zeros gzip far better than noise
    alone = bench.size_report(small)
    assert alone.ratio is None and alone.gzip_ratio is None and alone.bytes == 10_000
