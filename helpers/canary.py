"""A canary release with an automatic rollback rule, and shadow mode, against TF Serving's REST API.

- :class:`Splitter` sends a fixed share of requests to the ``canary`` label: request ``i`` goes
  to the canary when ``floor((i + 1) * share) > floor(i * share)``, so any ``n`` consecutive
  requests hold the share to within one request (no random streaks).
- :class:`RollbackRule` compares the canary with the stable version over the same period:
  error ratio and p95 latency, read from the server's own Prometheus metrics (per-version
  request counters and latency histograms, :func:`window` and :func:`histogram_quantile`), and
  the distribution of predicted classes (chi-square test of homogeneity,
  ``scipy.stats.chi2_contingency``, *and* a shift large enough to matter: the total variation
  distance :func:`class_shift`, since a retrained model is expected to predict a little
  differently and a large sample makes any difference significant). It decides nothing before
  the canary has served ``min_requests``.
- :func:`run` drives the load: ``concurrency`` clients sending bodies drawn at random (never in a
  cycle that could line up with the split and give the canary other images than stable), and
  every ``check_every`` requests the
  load waits at a checkpoint while the rule is evaluated (so a decision is taken at an exact
  request count, on a slow machine as on a fast one). On a rollback the splitter sends nothing
  more to the canary at once (as a traffic router sets the canary's weight to 0) and
  ``on_rollback`` rewrites the server's config so the label itself moves back.
- :func:`replay_class_rule` replays the class part of the rule offline, on two versions'
  predictions for the same images, over thousands of runs (NumPy, seconds): how often it rolls
  back a version, with an interval, where a handful of live runs can only say "not often".
- :func:`shadow` sends every request to the stable version (whose answer is the one returned)
  and a copy to the candidate, and compares their answers and latencies.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

REQUESTS = "serving_requests_total"
LATENCY_BUCKET = "serving_request_latency_seconds_bucket"


class Splitter:
    """Routes request ``i`` to the canary for a fixed ``share`` of requests (0 < share < 1)."""

    def __init__(self, share: float):
        if not 0 < share < 1:
            raise ValueError(f"The canary's share must be between 0 and 1, got {share}")
        self.share = Fraction(share).limit_denominator(10_000)
        self.stopped = False

    def to_canary(self, i: int) -> bool:
        """Whether request ``i`` (0, 1, 2, ...) goes to the canary; never after :meth:`stop`."""
        return not self.stopped and math.floor((i + 1) * self.share) > math.floor(i * self.share)

    def stop(self) -> None:
        """Send everything to stable from now on (the canary's weight set to 0)."""
        self.stopped = True


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus's ``histogram_quantile``: ``buckets`` are ``(upper bound, cumulative count)``
    ending with ``+inf``; linear interpolation inside the bucket that holds rank ``q * total``;
    the highest finite bound when the rank falls in ``+inf``; NaN without observations."""
    if not 0 <= q <= 1:
        raise ValueError(f"q must be in [0, 1], got {q}")
    buckets = sorted(buckets)
    if not buckets or not math.isinf(buckets[-1][0]):
        raise ValueError("The buckets must end with +Inf")
    total = buckets[-1][1]
    if total <= 0:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below) if count > below else upper
        lower, below = upper, count
    return lower


@dataclass
class Window:
    """One version's requests, errors (any status but 200) and latency buckets over a period."""

    requests: float
    errors: float
    buckets: list[tuple[float, float]]

    @property
    def error_ratio(self) -> float:
        """Errors per request (NaN without requests)."""
        return self.errors / self.requests if self.requests else math.nan

    def p95(self) -> float:
        """The 95th percentile of latency in seconds, from the histogram."""
        return histogram_quantile(0.95, self.buckets)


def window(before: Mapping, after: Mapping, model: str, version: int) -> Window:
    """What the server counted for ``model`` ``version`` between two scrapes
    (``helpers.serving.metrics.scrape``: ``{(sample, sorted labels): value}``)."""
    def labels_of(key):
        return dict(key[1])

    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for key, value in after.items():
        labels = labels_of(key)
        if labels.get("model") != model or labels.get("version") != str(version):
            continue
        change = value - before.get(key, 0.0)
        if key[0] == REQUESTS:
            requests += change
            errors += change if labels.get("status") != "200" else 0.0
        elif key[0] == LATENCY_BUCKET:
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + change
    return Window(requests, errors, sorted(buckets.items()) or [(math.inf, 0.0)])


def class_p_value(stable_counts: Sequence[int], canary_counts: Sequence[int]) -> float:
    """p-value of the chi-square test that both versions predict classes in the same proportions
    (classes neither predicted are left out; 1.0 when fewer than two classes remain)."""
    from scipy.stats import chi2_contingency

    if len(stable_counts) != len(canary_counts):
        raise ValueError(f"Expected two count vectors of the same length, got {len(stable_counts)} "
                         f"and {len(canary_counts)}")
    table = np.array([stable_counts, canary_counts], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(chi2_contingency(table).pvalue)


def class_p_values(stable_counts, canary_counts) -> np.ndarray:
    """:func:`class_p_value` for many tables at once: ``(..., classes)`` arrays of counts, same
    result (Yates's correction where one degree of freedom is left, as ``chi2_contingency``)."""
    from scipy.stats import chi2

    table = np.stack([np.asarray(stable_counts, float), np.asarray(canary_counts, float)], axis=-2)
    if table.shape[-2:] != (2, table.shape[-1]) or np.shape(stable_counts) != np.shape(canary_counts):
        raise ValueError("Expected two count arrays of the same shape")
    columns, rows = table.sum(axis=-2), table.sum(axis=-1)
    dof = (columns > 0).sum(axis=-1) - 1
    expected = rows[..., :, None] * columns[..., None, :] / np.maximum(rows.sum(axis=-1), 1)[..., None, None]
    gap = np.abs(table - expected)
    gap = np.where((dof == 1)[..., None, None], np.maximum(gap - 0.5, 0.0), gap)
    positive = np.where(expected > 0, expected, 1.0)
    statistic = np.where(expected > 0, gap ** 2 / positive, 0.0).sum(axis=(-2, -1))
    valid = (dof >= 1) & (rows > 0).all(axis=-1)
    return np.where(valid, chi2.sf(statistic, np.maximum(dof, 1)), 1.0)


def class_shift(stable_counts: Sequence[int], canary_counts: Sequence[int]) -> float:
    """Total variation distance between the two class distributions: half the sum of the absolute
    differences of the class shares, i.e. the share of answers that would have to change class
    (0: same proportions, 1: no class in common; 0 when either side has no answers)."""
    stable, canary_ = np.asarray(stable_counts, float), np.asarray(canary_counts, float)
    if stable.shape != canary_.shape:
        raise ValueError("Expected two count vectors of the same length")
    if stable.sum() == 0 or canary_.sum() == 0:
        return 0.0
    return float(0.5 * np.abs(stable / stable.sum() - canary_ / canary_.sum()).sum())


@dataclass
class RollbackRule:
    """Roll back when the canary, having served ``min_requests``, has an error ratio above the
    stable one by more than ``max_error_excess``, a p95 latency above ``p95_factor`` times the
    stable one plus ``p95_slack_s``, or a class distribution that differs both significantly
    (chi-square p < ``alpha``) and materially (:func:`class_shift` > ``min_class_shift``)."""

    min_requests: int = 100
    max_error_excess: float = 0.02
    p95_factor: float = 2.0
    p95_slack_s: float = 0.025
    alpha: float = 1e-4
    min_class_shift: float = 0.3

    def check(self, stable: Window, canary: Window, stable_classes: Sequence[int],
              canary_classes: Sequence[int]) -> tuple[list[str], dict]:
        """``(reasons to roll back, statistics)``: no reasons means keep going."""
        stats = {"canary_requests": canary.requests, "stable_requests": stable.requests,
                 "canary_error_ratio": canary.error_ratio, "stable_error_ratio": stable.error_ratio,
                 "canary_p95_s": canary.p95(), "stable_p95_s": stable.p95(),
                 "class_p_value": class_p_value(stable_classes, canary_classes),
                 "class_shift": class_shift(stable_classes, canary_classes)}
        if canary.requests < self.min_requests or stable.requests < self.min_requests:
            return [], stats
        reasons = []
        if stats["canary_error_ratio"] > (stats["stable_error_ratio"] or 0.0) + self.max_error_excess:
            reasons.append(f"error ratio {stats['canary_error_ratio']:.3f} "
                           f"vs {stats['stable_error_ratio']:.3f}")
        if stats["canary_p95_s"] > self.p95_factor * stats["stable_p95_s"] + self.p95_slack_s:
            reasons.append(f"p95 {stats['canary_p95_s'] * 1e3:.0f} ms "
                           f"vs {stats['stable_p95_s'] * 1e3:.0f} ms")
        if (sum(canary_classes) >= self.min_requests and stats["class_p_value"] < self.alpha
                and stats["class_shift"] > self.min_class_shift):
            reasons.append(f"predicted classes differ (shift {stats['class_shift']:.2f}, "
                           f"chi-square p = {stats['class_p_value']:.1e})")
        return reasons, stats


def replay_class_rule(stable_classes: Sequence[int], canary_classes: Sequence[int], rule: RollbackRule,
                      share: float, total_requests: int, check_every: int, runs: int, seed: int = 0,
                      chunk: int = 500) -> dict:
    """Replay the class part of ``rule`` offline, ``runs`` times: ``stable_classes[j]`` and
    ``canary_classes[j]`` are the classes the two versions predict for image ``j``; each run draws
    ``total_requests`` images at random, routes them with :class:`Splitter` (``share``) and
    applies the class test at every ``check_every`` requests (nothing before ``rule.min_requests``
    on either side), as :func:`run` does live with answers that never fail. Returns ``runs``,
    ``rolled_back`` (runs where the rule fired), ``first_fire`` (per run, the checkpoint's request
    count, 0 if never), and per run the ``lowest_p``/``largest_shift`` over the checkpoints where
    the rule may decide and ``lowest_p_early``/``largest_shift_early`` over those before (1.0/0.0
    if there are none)."""
    stable_classes, canary_classes = np.asarray(stable_classes), np.asarray(canary_classes)
    if stable_classes.shape != canary_classes.shape or stable_classes.ndim != 1 or not len(stable_classes):
        raise ValueError("Expected two non-empty vectors of predicted classes for the same images")
    if check_every < 1 or total_requests < check_every or runs < 1:
        raise ValueError("Need check_every >= 1, total_requests >= check_every and runs >= 1")
    splitter, blocks = Splitter(share), total_requests // check_every
    route = np.array([splitter.to_canary(i) for i in range(blocks * check_every)])
    checkpoints = np.arange(1, blocks + 1) * check_every
    to_canary = np.cumsum(route)[checkpoints - 1]
    may_decide = (to_canary >= rule.min_requests) & (checkpoints - to_canary >= rule.min_requests)
    rng = np.random.default_rng(seed)
    out = {"runs": runs, "first_fire": np.zeros(runs, int), "lowest_p": np.ones(runs),
           "largest_shift": np.zeros(runs), "lowest_p_early": np.ones(runs),
           "largest_shift_early": np.zeros(runs)}
    for start in range(0, runs, chunk):
        m = min(chunk, runs - start)
        order = rng.integers(0, len(stable_classes), (m, blocks * check_every))
        cells = np.where(route, canary_classes[order] + 10, stable_classes[order])  # 0-9 stable, 10-19 canary
        flat = (np.arange(m * blocks)[:, None] * 20 + cells.reshape(m * blocks, check_every)).ravel()
        counts = np.bincount(flat, minlength=m * blocks * 20).reshape(m, blocks, 20).cumsum(axis=1)
        p = class_p_values(counts[..., :10], counts[..., 10:])
        stable_share = counts[..., :10] / np.maximum(counts[..., :10].sum(-1, keepdims=True), 1)
        canary_share = counts[..., 10:] / np.maximum(counts[..., 10:].sum(-1, keepdims=True), 1)
        shift = 0.5 * np.abs(stable_share - canary_share).sum(-1)
        fire = may_decide & (p < rule.alpha) & (shift > rule.min_class_shift)
        part = slice(start, start + m)
        out["first_fire"][part] = np.where(fire.any(1), checkpoints[fire.argmax(1)], 0)
        for suffix, mask in (("", may_decide), ("_early", ~may_decide)):
            out["lowest_p" + suffix][part] = np.where(mask, p, 1.0).min(1)
            out["largest_shift" + suffix][part] = np.where(mask, shift, 0.0).max(1)
    out["rolled_back"] = int((out["first_fire"] > 0).sum())
    return out


@dataclass
class CanaryRun:
    """What :func:`run` saw: per-request records, one timeline row per checkpoint, the decision."""

    records: list[tuple] = field(default_factory=list)  # (t_s, i, body, to_canary, status, latency_s, class)
    timeline: list[dict] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    rolled_back: bool = False
    detect_s: float | None = None            # first canary request -> rollback decision
    decided_at_request: int | None = None
    canary_requests_sent: int = 0            # requests the splitter routed to the canary
    label_moved_s: float | None = None       # decision -> the server's label points at stable


def predicted_class(body: bytes) -> int:
    """``class_id`` of the first prediction in a TF Serving REST response, -1 if there is none."""
    try:
        return int(json.loads(body)["predictions"][0]["class_id"])
    except (ValueError, KeyError, IndexError, TypeError):
        return -1


def run(base_url: str, model: str, bodies: Sequence[bytes], versions: tuple[int, int], rule: RollbackRule,
        splitter: Splitter, total_requests: int, check_every: int, concurrency: int = 2,
        on_rollback: Callable[[], object] | None = None, label_moved: Callable[[], bool] | None = None,
        client_factory=None, timeout_s: float = 300, seed: int = 0) -> CanaryRun:
    """Send ``total_requests`` (each a body drawn from ``bodies`` with a generator seeded by
    ``seed``, independently of the route; the record keeps its index) to
    ``/labels/stable`` or ``/labels/canary`` as ``splitter`` routes them, with a checkpoint every
    ``check_every`` requests where ``rule`` compares ``versions = (stable, canary)``. On the first
    rollback decision: ``splitter.stop()``, then ``on_rollback()``; ``label_moved()`` is polled
    to time how long the server takes to move the label. Stops after ``timeout_s`` in any case."""
    from helpers import loadtest
    from helpers.serving import metrics

    if check_every < 1 or total_requests < check_every:
        raise ValueError("Need check_every >= 1 and total_requests >= check_every")
    factory = client_factory or (lambda: loadtest.HttpClient(base_url))
    paths = {flag: f"/v1/models/{model}/labels/{'canary' if flag else 'stable'}:predict"
             for flag in (False, True)}
    result, state = CanaryRun(), {"next": 0, "limit": check_every, "done": 0, "first_canary": None}
    condition, started = threading.Condition(), time.monotonic()
    deadline = started + timeout_s
    classes = {False: np.zeros(10, int), True: np.zeros(10, int)}
    order = np.random.default_rng(seed).integers(0, len(bodies), total_requests)

    def worker():
        client = factory()
        try:
            while True:
                with condition:
                    while (state["next"] >= min(state["limit"], total_requests)
                           and time.monotonic() < deadline):
                        if state["next"] >= total_requests:
                            return
                        condition.wait(0.1)
                    if time.monotonic() >= deadline:
                        return
                    i = state["next"]
                    state["next"] += 1
                    flag = splitter.to_canary(i)
                    if flag and state["first_canary"] is None:
                        state["first_canary"] = time.monotonic()
                sent = time.perf_counter()
                try:
                    status, body = client.post(paths[flag], bodies[order[i]])
                except OSError:
                    status, body = 599, b""
                latency = time.perf_counter() - sent
                label = predicted_class(body) if status == 200 else -1
                with condition:
                    result.records.append((time.monotonic() - started, i, int(order[i]), flag, status,
                                           latency, label))
                    result.canary_requests_sent += int(flag)
                    if 0 <= label < 10:
                        classes[flag][label] += 1
                    state["done"] += 1
                    condition.notify_all()
        finally:
            client.close()

    def watch_label(decided):
        while time.monotonic() < decided + 30 and not label_moved():
            time.sleep(0.05)
        if label_moved():
            result.label_moved_s = time.monotonic() - decided

    before = metrics.scrape(base_url)
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    helpers_threads = []
    for thread in threads:
        thread.start()
    finished = False
    try:
        for checkpoint in range(check_every, total_requests + 1, check_every):
            with condition:
                while state["done"] < checkpoint and time.monotonic() < deadline:
                    condition.wait(0.1)
            if time.monotonic() >= deadline:
                break
            after = metrics.scrape(base_url)
            stable, canary = (window(before, after, model, v) for v in versions)
            with condition:
                counts = {flag: classes[flag].copy() for flag in classes}
            reasons, stats = rule.check(stable, canary, counts[False], counts[True])
            now = time.monotonic()
            result.timeline.append({"t_s": now - started, "requests": checkpoint, **stats,
                                    "canary_share": result.canary_requests_sent / checkpoint,
                                    "stable_classes": counts[False].tolist(),
                                    "canary_classes": counts[True].tolist(),
                                    "rollback": bool(reasons) and not result.rolled_back})
            if reasons and not result.rolled_back:
                splitter.stop()
                result.rolled_back, result.reasons, result.decided_at_request = True, reasons, checkpoint
                result.detect_s = now - (state["first_canary"] or started)
                if on_rollback:
                    on_rollback()
                if label_moved:
                    helpers_threads.append(threading.Thread(target=watch_label, args=(now,), daemon=True))
                    helpers_threads[-1].start()
            with condition:
                state["limit"] = checkpoint + check_every
                condition.notify_all()
        finished = True
    finally:
        with condition:                     # let the clients finish, or stop them on an error
            state["limit"] = total_requests
            if not finished:
                state["next"] = total_requests
            condition.notify_all()
        for thread in threads + helpers_threads:
            thread.join(timeout=60)
    result.records.sort()
    return result


def shadow(base_url: str, model: str, bodies: Sequence[bytes], candidate_version: int, requests: int,
           client_factory=None) -> dict:
    """Shadow mode, one client: each request goes to ``/labels/stable`` (its answer is what the
    user gets) and a copy to ``/versions/<candidate_version>``. Returns the share of requests
    whose predicted classes agree, the candidate's errors, and both sides' p50/p95 latency (ms)."""
    from helpers import loadtest

    client = (client_factory or (lambda: loadtest.HttpClient(base_url)))()
    paths = (f"/v1/models/{model}/labels/stable:predict",
             f"/v1/models/{model}/versions/{candidate_version}:predict")
    latencies, agree, candidate_errors = ([], []), 0, 0
    try:
        for i in range(requests):
            answers = []
            for side, path in enumerate(paths):
                sent = time.perf_counter()
                status, body = client.post(path, bodies[i % len(bodies)])
                latencies[side].append(time.perf_counter() - sent)
                answers.append(predicted_class(body) if status == 200 else -1)
            candidate_errors += answers[1] < 0
            agree += answers[0] == answers[1] and answers[0] >= 0
    finally:
        client.close()
    stable_ms, candidate_ms = (np.asarray(side) * 1e3 for side in latencies)
    return {"requests": requests, "agreement": agree / requests, "candidate_errors": candidate_errors,
            "stable_p50_ms": float(np.percentile(stable_ms, 50)),
            "candidate_p50_ms": float(np.percentile(candidate_ms, 50)),
            "stable_p95_ms": float(np.percentile(stable_ms, 95)),
            "candidate_p95_ms": float(np.percentile(candidate_ms, 95))}
