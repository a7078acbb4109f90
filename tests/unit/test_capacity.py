"""helpers.capacity: the HPA rule as Kubernetes documents it."""

import pytest

from helpers import capacity


@pytest.mark.parametrize("current, metric, target, expected", [
    (1, 100, 50, 2),      # twice the target: double
    (2, 90, 50, 4),       # 3.6 rounds up
    (4, 10, 50, 1),       # 0.8 rounds up to 1
    (3, 50, 50, 3),       # on target
    (2, 54, 50, 2),       # ratio 1.08: inside the tolerance
    (2, 56, 50, 3),       # ratio 1.12: outside, 2.24 -> 3
    (10, 46, 50, 10),     # 0.92: inside the tolerance on the way down too
    (10, 44, 50, 9),      # 0.88: 8.8 -> 9
])
def test_hpa_desired_replicas_follows_the_documented_rule(current, metric, target, expected):
    assert capacity.hpa_desired_replicas(current, metric, target) == expected


def test_hpa_clamps_and_refuses_nonsense():
    assert capacity.hpa_desired_replicas(2, 500, 50, max_replicas=5) == 5
    assert capacity.hpa_desired_replicas(2, 0, 50, min_replicas=2) == 2
    assert capacity.hpa_desired_replicas(2, 60, 50, tolerance=0.0) == 3
    with pytest.raises(ValueError):
        capacity.hpa_desired_replicas(0, 10, 50)
    with pytest.raises(ValueError):
        capacity.hpa_desired_replicas(1, 10, 0)


def test_stabilized_scale_down_keeps_the_highest_recent_recommendation():
    history = [(0, 5), (100, 3), (250, 2), (390, 1)]
    assert capacity.stabilized_scale_down(history, now=390) == 3      # 100..390 inside 300 s
    assert capacity.stabilized_scale_down(history, now=560) == 1      # window 260..560: only the 1 at 390
    assert capacity.stabilized_scale_down(history, now=400, window_s=60) == 1
    with pytest.raises(ValueError):
        capacity.stabilized_scale_down(history, now=1000, window_s=10)
