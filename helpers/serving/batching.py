"""Dynamic batching: concurrent requests for the same version and signature run as one call.

A worker thread takes the first waiting request and, without waiting for more, every request
that queued up behind it (same version and signature, up to ``max_batch_size`` rows); it runs
them as one model call and splits the outputs. An idle server therefore answers a lone request
at once, and a busy one batches more the busier it is: requests arriving while the model runs
form the next batch. ``batch_timeout_micros`` adds an optional wait for a fuller batch, as in
TF Serving (default 0 here).
"""

from __future__ import annotations

import collections
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.serving.errors import InvalidArgument, Unavailable

# TF Serving's answers (tensorflow/core/kernels/batching_util/shared_batch_scheduler.h): UNAVAILABLE
# (HTTP 503) when the queue is full, INVALID_ARGUMENT (400) for a request larger than a batch.
QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"


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
    """The parameters in ``path`` (TF Serving's text format), or the defaults without a file."""
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

    The queue is a deque guarded by a condition: only :meth:`submit` ever adds to it (refusing
    with ``Unavailable``, TF Serving's message, when ``max_enqueued_batches * max_batch_size``
    rows would wait), and a
    worker leaves a request that does not fit its batch at the head of the queue instead of
    taking it out and putting it back, so no thread ever blocks on a full queue. :meth:`stop`
    lets each worker finish its current batch and refuses what still waits with ``Unavailable``.
    """

    def __init__(self, parameters: BatchingParameters = BatchingParameters(), on_batch=None):
        self.parameters = parameters
        self.on_batch = on_batch or (lambda rows: None)
        self.capacity = parameters.max_enqueued_batches * parameters.max_batch_size
        self._waiting: collections.deque[_Task] = collections.deque()
        self._waiting_rows = 0
        self._changed = threading.Condition()
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, name=f"batcher-{i}", daemon=True)
                         for i in range(parameters.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, key: tuple, signature, inputs: dict[str, np.ndarray]) -> Future:
        """Queue one request; its future holds the outputs (its own rows) or the model's error.

        Raises ``InvalidArgument`` for inputs that cannot be batched and ``Unavailable`` when the
        queue is full or the batcher is stopping.
        """
        rows = {len(value) for value in inputs.values()}
        if len(rows) != 1:
            raise InvalidArgument("Batching needs every input to have the same 0-th dimension")
        task = _Task(key, signature, inputs, rows.pop())
        if task.rows > self.parameters.max_batch_size:
            raise InvalidArgument(f"Task size {task.rows} is larger than maximum input batch size "
                                  f"{self.parameters.max_batch_size}")
        with self._changed:
            if self._stopping:
                raise Unavailable("Server is shutting down, retry on another replica")
            if self._waiting_rows + task.rows > self.capacity:
                raise Unavailable(QUEUE_FULL)
            self._waiting.append(task)
            self._waiting_rows += task.rows
            self._changed.notify()
        return task.future

    def _fits(self, first: _Task, rows: int) -> bool:
        """Whether the request at the head of the queue can join ``first``'s batch of ``rows``."""
        head = self._waiting[0]
        return head.key == first.key and rows + head.rows <= self.parameters.max_batch_size

    def _next_batch(self) -> list[_Task] | None:
        """The next batch (``None`` once stopping): the oldest request and those behind it that
        share its key, up to ``max_batch_size`` rows, waiting at most ``batch_timeout_micros``."""
        with self._changed:
            while not self._waiting and not self._stopping:
                self._changed.wait()
            if self._stopping:
                return None
            first = self._waiting.popleft()
            self._waiting_rows -= first.rows
            batch, rows = [first], first.rows
            deadline = time.perf_counter() + self.parameters.batch_timeout_micros / 1e6
            while rows < self.parameters.max_batch_size and not self._stopping:
                if not self._waiting:
                    timeout = deadline - time.perf_counter()
                    if timeout <= 0 or not self._changed.wait(timeout) or not self._waiting:
                        break
                if not self._fits(first, rows):
                    break                      # stays at the head: it starts the next batch
                task = self._waiting.popleft()
                self._waiting_rows -= task.rows
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

    def stop(self, timeout_s: float = 5) -> None:
        """Refuse new requests, let each worker finish its batch, refuse what still waits."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join(timeout=timeout_s)
        with self._changed:
            left, self._waiting, self._waiting_rows = list(self._waiting), collections.deque(), 0
        for task in left:
            task.future.set_exception(Unavailable("Server is shutting down, retry on another replica"))
