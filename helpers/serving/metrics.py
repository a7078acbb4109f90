"""Prometheus metrics of the server, in a registry of its own.

- ``serving_requests_total{model, version, api, status}``: requests by outcome;
- ``serving_request_latency_seconds{model, version, api}``: latency histogram;
- ``serving_batch_size``: rows per model call (1 everywhere without batching);
- ``serving_predicted_class_total{model, version, class}`` and
  ``serving_prediction_confidence{model, version}`` (a histogram of the top probability): what the
  model answers, for outputs that are class probabilities (a 2-D float output whose rows are
  non-negative and sum to 1); a model that starts predicting one class, or predicts with less
  confidence, shows here before any label arrives;
- ``python_gc_pause_seconds{generation}``: how long each garbage-collection pass stopped the
  process (measured with ``gc.callbacks``), the cause of the latency tail that ``gc.freeze()``
  removes.
"""

from __future__ import annotations

import gc
import time

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONFIDENCE_BUCKETS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
GC_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class ServerMetrics:
    """The counters and histograms above; ``exposition()`` renders the text format."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("serving_requests", "Requests by model, version, API and status",
                                ["model", "version", "api", "status"], registry=self.registry)
        self.latency = Histogram("serving_request_latency_seconds", "Request latency",
                                 ["model", "version", "api"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.batch_size = Histogram("serving_batch_size", "Rows per model call",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.predicted_class = Counter("serving_predicted_class", "Rows predicted per class",
                                       ["model", "version", "class"], registry=self.registry)
        self.confidence = Histogram("serving_prediction_confidence", "Top class probability per row",
                                    ["model", "version"], buckets=CONFIDENCE_BUCKETS,
                                    registry=self.registry)
        self.gc_pause = Histogram("python_gc_pause_seconds", "Garbage-collection pauses",
                                  ["generation"], buckets=GC_BUCKETS, registry=self.registry)
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        # The collector holds the GIL from "start" to "stop": no other thread runs in between.
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pause.labels(str(info["generation"])).observe(time.perf_counter() - self._gc_started)

    def close(self) -> None:
        """Stop timing garbage collections."""
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def observe_request(self, model: str, version: str, api: str, status, seconds: float) -> None:
        self.requests.labels(model, version, api, str(status)).inc()
        self.latency.labels(model, version, api).observe(seconds)

    def observe_outputs(self, model: str, version: str, outputs: dict) -> None:
        """Count predicted classes and top probabilities of each class-probability output."""
        for value in outputs.values():
            probabilities = class_probabilities(value)
            if probabilities is None:
                continue
            classes = probabilities.argmax(axis=1)
            for label, count in zip(*np.unique(classes, return_counts=True)):
                self.predicted_class.labels(model, version, str(label)).inc(int(count))
            histogram = self.confidence.labels(model, version)
            for top in probabilities.max(axis=1):
                histogram.observe(float(top))

    def observe_batch(self, rows: int) -> None:
        self.batch_size.observe(rows)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def class_probabilities(value, tolerance: float = 1e-3) -> np.ndarray | None:
    """``value`` as a (rows, classes) float array if it holds class probabilities, else ``None``."""
    array = np.asarray(value)
    if array.ndim != 2 or array.shape[1] < 2 or array.shape[0] == 0 or array.dtype.kind != "f":
        return None
    if not np.all(np.isfinite(array)) or array.min() < 0:
        return None
    return array if np.allclose(array.sum(axis=1), 1.0, atol=tolerance) else None


def parse_samples(text: str) -> dict[tuple[str, tuple], float]:
    """Prometheus text format as ``{(sample name, ((label, value), ...)): value}``.

    Labels are sorted, so ``samples[("serving_batch_size_count", ())]`` or
    ``samples[("python_gc_pause_seconds_sum", (("generation", "2"),))]`` look a sample up.
    """
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def scrape(base_url: str, timeout_s: float = 10) -> dict[tuple[str, tuple], float]:
    """Fetch ``<base_url>/monitoring/prometheus/metrics`` and parse it (see :func:`parse_samples`)."""
    import requests

    reply = requests.get(f"{base_url}/monitoring/prometheus/metrics", timeout=timeout_s)
    reply.raise_for_status()
    return parse_samples(reply.text)


class MetricsChange:
    """How much a server's metrics moved while a block ran.

        with MetricsChange(server.rest_url) as change:
            ...                                              # load the server
        change("serving_batch_size_sum") / change("serving_batch_size_count")   # rows per call
        change("python_gc_pause_seconds_count", generation="2")
    """

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.before: dict = {}
        self.after: dict = {}

    def __enter__(self) -> MetricsChange:
        self.before = scrape(self.base_url)
        return self

    def __exit__(self, *exc) -> None:
        self.after = scrape(self.base_url)

    def __call__(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return self.after.get(key, 0.0) - self.before.get(key, 0.0)
