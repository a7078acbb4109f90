"""helpers.capacity: the HPA rule as Kubernetes documents it."""

import os
import subprocess
import sys
import time

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


def test_littles_law():
    assert capacity.littles_law_concurrency(200, 0.02) == pytest.approx(4.0)
    assert capacity.littles_law_concurrency(50, 0.1) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        capacity.littles_law_concurrency(-1, 0.1)


def test_rps_at_slo_picks_the_fastest_step_within_the_objective():
    ladder = [(1, 100.0, 12.0), (2, 180.0, 20.0), (4, 260.0, 45.0), (8, 270.0, 120.0)]
    assert capacity.rps_at_slo(ladder, 50) == 260.0
    assert capacity.rps_at_slo(ladder, 20) == 180.0
    assert capacity.rps_at_slo(ladder, 5) == 0.0
    with pytest.raises(ValueError):
        capacity.rps_at_slo(ladder, 0)


def test_plan_counts_replicas_cores_and_cost():
    row = capacity.plan(10_000, per_replica_rps=500, cores_per_replica=2, price_per_core_hour=0.05,
                        headroom=0.2)
    assert row["replicas"] == 25            # 10,000 / (500 * 0.8)
    assert row["cores"] == 50
    assert row["cost_per_hour"] == pytest.approx(2.5)
    assert row["cost_per_million"] == pytest.approx(2.5 / 36_000_000 * 1e6)
    small = capacity.plan(10, per_replica_rps=500, cores_per_replica=1, price_per_core_hour=1, min_replicas=2)
    assert small["replicas"] == 2           # the floor for availability, not the load
    assert capacity.plan(1001, 1000, 1, 1, headroom=0)["replicas"] == 2
    assert capacity.plan(3001, 1000, 1, 1, headroom=0, min_replicas=1)["replicas"] == 4
    with pytest.raises(ValueError):
        capacity.plan(100, 0, 1, 1)
    with pytest.raises(ValueError):
        capacity.plan(100, 10, 1, 1, headroom=1.0)


def test_availability_arithmetic():
    assert capacity.p_all_down(0.001, 1) == pytest.approx(1e-3)
    assert capacity.p_all_down(0.001, 3) == pytest.approx(1e-9)
    assert capacity.capacity_during_drain(3, 1) == pytest.approx(2 / 3)
    assert capacity.capacity_during_drain(3, None) == 0.0
    assert capacity.capacity_during_drain(1, 1) == 0.0
    with pytest.raises(ValueError):
        capacity.p_all_down(1.5, 2)
    with pytest.raises(ValueError):
        capacity.capacity_during_drain(0, 1)


def test_hpa_scale_up_follows_the_policies_and_clamps():
    timeline = capacity.hpa_scale_up(10_000, 750, min_replicas=3, max_replicas=30)
    counts = [r for _, r in timeline]
    assert counts == [3, 7, 14]               # +4 pods beats +100 % at 3; then doubling; 14 = ceil(10000/750)
    assert [t for t, _ in timeline] == [0, 15, 30]
    assert capacity.hpa_scale_up(10_000, 750, 2, 6)[-1] == (15, 6)      # clamped at maxReplicas
    slow = capacity.hpa_scale_up(10_000, 750, 2, 30, percent=100, pods=0, period_s=30)
    assert [r for _, r in slow] == [2, 4, 4, 8, 8, 14]                 # doubling only every 30 s
    assert capacity.hpa_scale_up(100, 750, 2, 6) == [(0.0, 2)]
    with pytest.raises(ValueError):
        capacity.hpa_scale_up(100, 750, 3, 2)


def test_replicas_for_zone_loss():
    assert capacity.replicas_for_zone_loss(9) == 14          # 14 over 3 zones: 5/5/4, 9 survive
    assert capacity.replicas_for_zone_loss(14) == 21
    assert capacity.replicas_for_zone_loss(1) == 2
    assert capacity.replicas_for_zone_loss(10, zones=2) == 20
    with pytest.raises(ValueError):
        capacity.replicas_for_zone_loss(0)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux and two CPUs")
def test_pin_threads_pins_every_thread(tmp_path):
    code = "import threading, time; threading.Thread(target=time.sleep, args=(30,)).start(); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.5)
        core = sorted(os.sched_getaffinity(0))[-1]
        assert capacity.pin_threads(child.pid, [core]) >= 2
        for tid in os.listdir(f"/proc/{child.pid}/task"):
            assert os.sched_getaffinity(int(tid)) == {core}
    finally:
        child.kill()
        child.wait()
