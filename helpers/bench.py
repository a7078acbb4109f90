"""Measurement: latency (median and p95 after warm-up, threads stated) and size (on disk, gzip'ed).

Timings on a shared CPU are noisy: compare variants as ratios measured in the same run, never
against absolute numbers from another machine or another day.
"""

from __future__ import annotations

import gzip
import io
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Latency:
    """Latency statistics of one callable, in milliseconds."""

    median_ms: float
    p95_ms: float
    mean_ms: float
    runs: int
    warmup: int
    threads: int | None

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        threads = f"{self.threads} thread(s)" if self.threads else "threads: runtime default"
        return (f"median {self.median_ms:.3f} ms · p95 {self.p95_ms:.3f} ms "
                f"({self.runs} runs after {self.warmup} warm-up, {threads})")


def measure_latency(fn: Callable[[], object], runs: int = 100, warmup: int = 10,
                    threads: int | None = None) -> Latency:
    """Time ``fn()`` ``runs`` times after ``warmup`` untimed calls; return median, p95 and mean.

    ``threads`` is recorded, not set: pass the thread count the runtime was configured with
    (e.g. the LiteRT interpreter's ``num_threads``) so that every reported number states it.
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    samples = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        fn()
        samples[i] = time.perf_counter() - start
    samples *= 1000.0
    return Latency(median_ms=float(np.median(samples)), p95_ms=float(np.percentile(samples, 95)),
                   mean_ms=float(samples.mean()), runs=runs, warmup=warmup, threads=threads)


def _files(path: Path) -> list[Path]:
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    if path.is_file():
        return [path]
    raise FileNotFoundError(f"Nothing to measure at {path}")


def size_on_disk(path: Path) -> int:
    """Bytes on disk of a file, or of all files under a folder (e.g. a SavedModel)."""
    return sum(p.stat().st_size for p in _files(path))


def gzip_size(path: Path, level: int = 9) -> int:
    """Bytes after gzip (level 9) of a file, or the sum over the files of a folder.

    Zeros and repeated values (pruning, clustering) only pay off after such compression.
    """
    total = 0
    for file in _files(path):
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=level, mtime=0) as handle:
            handle.write(file.read_bytes())
        total += buffer.getbuffer().nbytes
    return total


@dataclass(frozen=True)
class Size:
    """Size of a model artifact, and its ratios against a reference (the float32 ``.tflite``)."""

    bytes: int
    gzip_bytes: int
    ratio: float | None = None
    gzip_ratio: float | None = None


def size_report(path: Path, reference: Path | None = None) -> Size:
    """Size of ``path`` on disk and gzip'ed; with ``reference``, how many times smaller it is."""
    raw, packed = size_on_disk(path), gzip_size(path)
    if reference is None:
        return Size(raw, packed)
    return Size(raw, packed, ratio=size_on_disk(reference) / raw,
                gzip_ratio=gzip_size(reference) / packed)
