"""Scaling arithmetic: the Kubernetes HorizontalPodAutoscaler's rule, and capacity planning.

The HPA rule is written out here, not hidden in a library, because it is the lesson: how many
replicas an autoscaler asks for, given what it measures. It follows the Kubernetes
documentation (Horizontal Pod Autoscaling, "Algorithm details"):
``desired = ceil(current * metric / target)``, unchanged while ``metric / target`` is within
the tolerance (0.1 by default) of 1, clamped to ``[min, max]``; on scale-down the highest
recommendation of the stabilization window (300 s by default) wins.
"""

from __future__ import annotations

import contextlib
import math


def hpa_desired_replicas(current: int, metric: float, target: float, tolerance: float = 0.1,
                         min_replicas: int = 1, max_replicas: int | None = None) -> int:
    """The replica count the HPA asks for when ``current`` replicas report ``metric`` (their
    average, e.g. CPU utilization or ongoing requests per replica) against ``target``.

    >>> hpa_desired_replicas(2, 90, 50)      # 2 * 90 / 50 = 3.6 -> 4
    4
    >>> hpa_desired_replicas(2, 52, 50)      # ratio 1.04, within the 10 % tolerance: no change
    2
    """
    if current < 1 or target <= 0 or metric < 0:
        raise ValueError(f"need current >= 1, target > 0, metric >= 0; got {current}, {target}, {metric}")
    ratio = metric / target
    desired = current if abs(ratio - 1.0) <= tolerance else math.ceil(current * ratio)
    desired = max(desired, min_replicas)
    return min(desired, max_replicas) if max_replicas is not None else desired


def stabilized_scale_down(recommendations: list[tuple[float, int]], now: float,
                          window_s: float = 300.0) -> int:
    """The replica count after the scale-down stabilization window: the highest recommendation
    made in the last ``window_s`` seconds (``recommendations`` as ``(time_s, replicas)``), so a
    short dip in load does not remove replicas that are needed again a minute later."""
    recent = [replicas for time_s, replicas in recommendations if now - window_s <= time_s <= now]
    if not recent:
        raise ValueError("no recommendation inside the stabilization window")
    return max(recent)


def littles_law_concurrency(rps: float, mean_latency_s: float) -> float:
    """Little's law, ``L = λ W``: the requests in flight when ``rps`` requests per second each
    spend ``mean_latency_s`` in the system. A closed-loop test with N clients must give ≈ N."""
    if rps < 0 or mean_latency_s < 0:
        raise ValueError(f"need rps >= 0 and latency >= 0, got {rps}, {mean_latency_s}")
    return rps * mean_latency_s


def rps_at_slo(points: list[tuple[int, float, float]], p99_slo_ms: float) -> float:
    """The highest throughput of a concurrency ladder that kept its p99 within the objective.

    ``points`` are ``(concurrency, rps, p99_ms)``; returns 0.0 when no step met the objective."""
    if p99_slo_ms <= 0:
        raise ValueError(f"the p99 objective must be positive, got {p99_slo_ms}")
    meeting = [rps for _, rps, p99_ms in points if p99_ms <= p99_slo_ms]
    return max(meeting, default=0.0)


def plan(target_rps: float, per_replica_rps: float, cores_per_replica: float,
         price_per_core_hour: float, headroom: float = 0.3, min_replicas: int = 2) -> dict:
    """Replicas, cores and cost for ``target_rps``, each replica loaded to ``1 - headroom`` of
    the throughput it sustains at the latency objective (the headroom absorbs bursts, a lost
    zone, the autoscaler's delay). Cost per million predictions = hourly cost / predictions per
    hour × 10⁶."""
    if target_rps <= 0 or per_replica_rps <= 0 or cores_per_replica <= 0 or not 0 <= headroom < 1:
        raise ValueError("need positive rates and cores, and 0 <= headroom < 1")
    replicas = max(min_replicas, math.ceil(target_rps / (per_replica_rps * (1 - headroom))))
    cores = replicas * cores_per_replica
    cost_per_hour = cores * price_per_core_hour
    return {"target_rps": target_rps, "replicas": replicas, "cores": cores,
            "cost_per_hour": cost_per_hour,
            "cost_per_million": cost_per_hour / (target_rps * 3600) * 1e6}


def p_all_down(p_down: float, independent_failures: int) -> float:
    """Probability that every one of ``independent_failures`` failure domains (zones) is down at
    once, each down with probability ``p_down`` independently: ``p_down ** n``."""
    if not 0 <= p_down <= 1 or independent_failures < 1:
        raise ValueError(f"need 0 <= p_down <= 1 and n >= 1, got {p_down}, {independent_failures}")
    return p_down ** independent_failures


def capacity_during_drain(replicas: int, max_unavailable: int | None) -> float:
    """Fraction of the replicas still serving while nodes are drained (voluntary disruptions):
    a PodDisruptionBudget with ``max_unavailable`` limits evictions; without one
    (``None``) a drain may evict every replica at once."""
    if replicas < 1:
        raise ValueError(f"need replicas >= 1, got {replicas}")
    if max_unavailable is None:
        return 0.0
    return max(replicas - max_unavailable, 0) / replicas


def hpa_scale_up(load: float, target_per_replica: float, min_replicas: int, max_replicas: int,
                 percent: float = 100, pods: int = 4, period_s: float = 15,
                 sync_s: float = 15, tolerance: float = 0.1) -> list[tuple[float, int]]:
    """The HPA's scale-up, sync by sync, from ``min_replicas`` under a step of ``load`` (e.g.
    requests per second, spread evenly): each sync asks for ``hpa_desired_replicas``, limited by
    the ``behavior.scaleUp`` policies with ``selectPolicy: Max`` (the larger of ``+percent`` %
    and ``+pods`` over the last ``period_s``). Returns ``(seconds, replicas)`` at t=0 and at
    each sync until the HPA asks for no more."""
    if load <= 0 or target_per_replica <= 0 or not 1 <= min_replicas <= max_replicas:
        raise ValueError("need load > 0, target > 0 and 1 <= min_replicas <= max_replicas")
    timeline = [(0.0, min_replicas)]
    while True:
        now, current = timeline[-1][0] + sync_s, timeline[-1][1]
        start = min(r for t, r in timeline if t >= now - period_s)     # count at the period's start
        limit = max(math.ceil(start * (1 + percent / 100)), start + pods)
        desired = hpa_desired_replicas(current, load / current, target_per_replica, tolerance,
                                       min_replicas, max_replicas)
        if desired <= current:
            return timeline
        timeline.append((now, min(desired, limit)))


def replicas_for_zone_loss(needed: int, zones: int = 3) -> int:
    """The fewest replicas, spread evenly over ``zones`` (the largest zone holds
    ``ceil(R / zones)``), that still leave ``needed`` running when the largest zone is lost."""
    if needed < 1 or zones < 2:
        raise ValueError(f"need needed >= 1 and zones >= 2, got {needed}, {zones}")
    replicas = needed
    while replicas - math.ceil(replicas / zones) < needed:
        replicas += 1
    return replicas


def pin_threads(pid: int, cores: list[int]) -> int:
    """Restrict every existing thread of process ``pid`` to ``cores`` (Linux; threads it starts
    later inherit it). ``os.sched_setaffinity(pid)`` alone pins only the main thread. Returns the
    number of threads pinned."""
    import os
    tasks = os.listdir(f"/proc/{pid}/task")
    for tid in tasks:
        with contextlib.suppress(ProcessLookupError):      # a thread that ended meanwhile
            os.sched_setaffinity(int(tid), cores)
    return len(tasks)
