import time

import pytest

from helpers import bench


def test_measure_latency_orders_statistics():
    stats = bench.measure_latency(lambda: time.sleep(0.002), runs=20, warmup=2, threads=1)
    assert stats.runs == 20 and stats.threads == 1
    assert 1.5 <= stats.median_ms <= stats.p95_ms
    assert "median" in str(stats) and "1 thread" in str(stats)


def test_measure_latency_counts_calls():
    calls = []
    bench.measure_latency(lambda: calls.append(1), runs=5, warmup=3)
    assert len(calls) == 8
    with pytest.raises(ValueError):
        bench.measure_latency(lambda: None, runs=0)


def test_sizes_of_file_and_folder(tmp_path):
    zeros = tmp_path / "zeros.bin"
    zeros.write_bytes(bytes(100_000))
    noise = tmp_path / "folder" / "noise.bin"
    noise.parent.mkdir()
    noise.write_bytes(bytes(range(256)) * 40)
    assert bench.size_on_disk(zeros) == 100_000
    assert bench.gzip_size(zeros) < 1_000                     # zeros compress
    assert bench.size_on_disk(tmp_path) == 100_000 + 10_240   # folders are summed
    report = bench.size_report(noise, reference=zeros)
    assert report.ratio == pytest.approx(100_000 / 10_240)
    with pytest.raises(FileNotFoundError):
        bench.size_on_disk(tmp_path / "absent")
