"""Measurement: latency (median and p95 after warm-up, threads stated) and size (on disk, gzip'ed).

Timings on a shared CPU are noisy: compare variants as ratios measured in the same run, never
against absolute numbers from another machine or another day.
"""

from __future__ import annotations

import gzip
import io
import time
from collections.abc import Callable, Mapping
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


@dataclass(frozen=True)
class Interleaved:
    """Latencies of several callables timed in alternating rounds (see :func:`interleaved`).

    ``latency`` summarises every timed call of each candidate; ``round_medians`` holds each
    round's median (ms), from which ratios are taken round by round.
    """

    latency: dict[str, Latency]
    round_medians: dict[str, tuple]

    def ratio(self, numerator: str, denominator: str) -> float:
        """Median over rounds of ``numerator``'s round median / ``denominator``'s."""
        a, b = np.asarray(self.round_medians[numerator]), np.asarray(self.round_medians[denominator])
        return float(np.median(a / b))

    def speedup(self, baseline: str, candidate: str) -> float:
        """How many times faster ``candidate`` is than ``baseline`` (>1: faster)."""
        return self.ratio(baseline, candidate)

    def table(self, baseline: str | None = None):
        """Median and p95 (ms) of every candidate; with ``baseline``, each one's speed-up over it."""
        import pandas as pd

        rows = {name: {"median ms": t.median_ms, "p95 ms": t.p95_ms} for name, t in self.latency.items()}
        if baseline is not None:
            for name in rows:
                rows[name][f"speed-up vs {baseline}"] = self.speedup(baseline, name)
        return pd.DataFrame(rows).T


def interleaved(candidates: Mapping[str, Callable[[], object]], rounds: int = 15,
                runs_per_round: int = 20, warmup: int = 5, threads: int | None = None) -> Interleaved:
    """Time several callables A/B/A/B: ``rounds`` rounds of ``runs_per_round`` calls each.

    On a shared machine the load changes from second to second; timing A in one loop and B in
    a later one lets a busy moment land on one of them. Alternating them in short rounds (the
    order rotating each round) exposes both to the same conditions, and a ratio taken per round
    and then the median over rounds ignores the rounds a burst of load spoiled.
    """
    if len(candidates) < 2 or rounds < 1 or runs_per_round < 1 or warmup < 0:
        raise ValueError("interleaved needs two or more candidates, rounds >= 1, "
                         "runs_per_round >= 1 and warmup >= 0")
    names = list(candidates)
    for name in names:
        for _ in range(warmup):
            candidates[name]()
    samples = {name: np.empty((rounds, runs_per_round)) for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn, row = candidates[name], samples[name][r]
            for i in range(runs_per_round):
                start = time.perf_counter()
                fn()
                row[i] = time.perf_counter() - start
    latency, medians = {}, {}
    for name, values in samples.items():
        values = values * 1000.0
        flat = values.ravel()
        latency[name] = Latency(median_ms=float(np.median(flat)),
                                p95_ms=float(np.percentile(flat, 95)), mean_ms=float(flat.mean()),
                                runs=flat.size, warmup=warmup, threads=threads)
        medians[name] = tuple(float(m) for m in np.median(values, axis=1))
    return Interleaved(latency, medians)


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
