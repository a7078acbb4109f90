"""Dynamic batching: concurrent requests for the same version and signature run as one call.

A worker thread takes the first waiting request and, without waiting for more, every request
that queued up behind it (same version and signature, up to ``max_batch_size`` rows); it runs
them as one model call and splits the outputs. An idle server therefore answers a lone request
at once, and a busy one batches more the busier it is: requests arriving while the model runs
form the next batch. ``batch_timeout_micros`` adds an optional wait for a fuller batch, as in
TF Serving (default 0 here).
"""

from __future__ import annotations

import queue
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.serving.errors import InvalidArgument, Unavailable


@dataclass(frozen=True)
class BatchingParameters:
    """The fields of TF Serving's ``BatchingParameters`` this server uses."""

    max_batch_size: int = 64
    batch_timeout_micros: int = 0
    num_batch_threads: int = 1
    max_enqueued_batches: int = 1000


def parse_batching_parameters(text: str) -> BatchingParameters:
    """Parse TF Serving's text format, e.g. ``max_batch_size { value: 32 }``; unknown fields fail."""
    values = {}
    text = re.sub(r"#.*", "", text)
    for name, value in re.findall(r"(\w+)\s*\{\s*value\s*:\s*(\d+)\s*\}", text):
        values[name] = int(value)
    leftover = re.sub(r"(\w+)\s*\{\s*value\s*:\s*(\d+)\s*\}", "", text).strip()
    known = set(BatchingParameters.__dataclass_fields__)
    unknown = sorted(set(values) - known) + ([leftover[:40]] if leftover else [])
    if unknown:
        raise ValueError(f"Batching parameters: unsupported or malformed entries {unknown}; "
                         f"supported: {sorted(known)}")
    return BatchingParameters(**values)


def read_batching_parameters(path: Path | None) -> BatchingParameters:
    return parse_batching_parameters(Path(path).read_text()) if path else BatchingParameters()


@dataclass
class _Task:
    key: tuple
    signature: object
    inputs: dict[str, np.ndarray]
    rows: int
    future: Future = field(default_factory=Future)


class Batcher:
    """Runs ``signature.run`` for submitted requests, merging those that wait together.

    ``on_batch(size_in_rows)`` is called for every model call (for the batch-size histogram).
    """

    def __init__(self, parameters: BatchingParameters = BatchingParameters(), on_batch=None):
        self.parameters = parameters
        self.on_batch = on_batch or (lambda rows: None)
        self._queue: queue.Queue[_Task | None] = queue.Queue(
            maxsize=parameters.max_enqueued_batches * parameters.max_batch_size)
        self._held: list[_Task] = []
        self._threads = [threading.Thread(target=self._work, name=f"batcher-{i}", daemon=True)
                         for i in range(parameters.num_batch_threads)]
        self._lock = threading.Lock()
        for thread in self._threads:
            thread.start()

    def submit(self, key: tuple, signature, inputs: dict[str, np.ndarray]) -> Future:
        rows = {len(value) for value in inputs.values()}
        if len(rows) != 1:
            raise InvalidArgument("Batching needs every input to have the same 0-th dimension")
        task = _Task(key, signature, inputs, rows.pop())
        if task.rows > self.parameters.max_batch_size:
            raise InvalidArgument(f"Request has {task.rows} rows; max_batch_size is "
                                  f"{self.parameters.max_batch_size}")
        try:
            self._queue.put_nowait(task)
        except queue.Full:
            raise Unavailable("Batch queue is full, retry later") from None
        return task.future

    def _next_batch(self) -> list[_Task] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch, rows = [first], first.rows
        deadline = time.perf_counter() + self.parameters.batch_timeout_micros / 1e6
        while rows < self.parameters.max_batch_size:
            timeout = deadline - time.perf_counter()
            try:
                task = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if task is None:
                self._queue.put(None)
                break
            if task.key != first.key or rows + task.rows > self.parameters.max_batch_size:
                self._queue.put(task)          # goes to the back: served by the next batch
                break
            batch.append(task)
            rows += task.rows
        return batch

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                names = list(batch[0].inputs)
                merged = {n: np.concatenate([t.inputs[n] for t in batch]) for n in names}
                self.on_batch(sum(t.rows for t in batch))
                outputs = batch[0].signature.run(merged)
                start = 0
                for task in batch:
                    task.future.set_result({n: v[start:start + task.rows] for n, v in outputs.items()})
                    start += task.rows
            except Exception as error:  # noqa: BLE001 - every waiting client gets the error
                for task in batch:
                    if not task.future.done():
                        task.future.set_exception(error)

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
