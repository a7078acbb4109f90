"""Scaling arithmetic: the Kubernetes HorizontalPodAutoscaler's rule, and capacity planning.

The HPA rule is written out here, not hidden in a library, because it is the lesson: how many
replicas an autoscaler asks for, given what it measures. It follows the Kubernetes
documentation (Horizontal Pod Autoscaling, "Algorithm details"):
``desired = ceil(current * metric / target)``, unchanged while ``metric / target`` is within
the tolerance (0.1 by default) of 1, clamped to ``[min, max]``; on scale-down the highest
recommendation of the stabilization window (300 s by default) wins.
"""

from __future__ import annotations

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
