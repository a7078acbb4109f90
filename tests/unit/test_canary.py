"""The canary of notebook 13c: traffic split, Prometheus arithmetic, the rollback rule, a live run."""

import math

import numpy as np
import pytest

from helpers import canary

BOUNDS = (0.005, 0.01, 0.025, math.inf)


def scrape(model="m", **versions):
    """A parsed scrape: per version, (status -> count, cumulative bucket counts)."""
    samples = {}
    for version, (statuses, buckets) in versions.items():
        v = version.lstrip("v")
        for status, count in statuses.items():
            labels = (("api", "rest"), ("model", model), ("status", status), ("version", v))
            samples[(canary.REQUESTS, labels)] = count
        for bound, count in zip(BOUNDS, buckets):
            le = "+Inf" if math.isinf(bound) else str(bound)
            key = (canary.LATENCY_BUCKET, (("api", "rest"), ("le", le), ("model", model), ("version", v)))
            samples[key] = count
    return samples


def test_splitter_sends_exactly_the_share_evenly_and_stops():
    splitter = canary.Splitter(0.1)
    routed = [splitter.to_canary(i) for i in range(1000)]
    assert sum(routed) == 100
    assert all(sum(routed[k:k + 10]) == 1 for k in range(0, 1000, 10))        # no streaks
    assert sum(canary.Splitter(0.25).to_canary(i) for i in range(40)) == 10
    splitter.stop()
    assert not any(splitter.to_canary(i) for i in range(100))
    for share in (0, 1, -0.1):
        with pytest.raises(ValueError):
            canary.Splitter(share)


def test_histogram_quantile_interpolates_as_prometheus_does():
    buckets = [(0.1, 10.0), (0.2, 20.0), (math.inf, 20.0)]
    assert canary.histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert canary.histogram_quantile(0.75, buckets) == pytest.approx(0.15)
    assert canary.histogram_quantile(0.25, buckets) == pytest.approx(0.05)     # lower bound 0
    assert canary.histogram_quantile(0.99, [(0.1, 1.0), (math.inf, 10.0)]) == pytest.approx(0.1)  # in +Inf
    assert math.isnan(canary.histogram_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]))
    with pytest.raises(ValueError):
        canary.histogram_quantile(0.5, [(0.1, 1.0)])


def test_window_takes_the_difference_for_one_version():
    before = scrape(v1=({"200": 10}, (5, 8, 10, 10)), v2=({"200": 3}, (3, 3, 3, 3)))
    after = scrape(v1=({"200": 110, "500": 5}, (5, 58, 115, 115)), v2=({"200": 50}, (50, 50, 50, 50)))
    one = canary.window(before, after, "m", 1)
    assert (one.requests, one.errors) == (105, 5)
    assert one.error_ratio == pytest.approx(5 / 105)
    assert dict(one.buckets) == {0.005: 0, 0.01: 50, 0.025: 105, math.inf: 105}
    assert 0.01 < one.p95() <= 0.025
    assert canary.window(before, after, "m", 2).requests == 47
    assert canary.window(before, after, "other", 1).requests == 0
    assert math.isnan(canary.window(before, after, "m", 9).error_ratio)


def test_class_test_separates_same_from_different_distributions():
    rng = np.random.default_rng(0)
    same = [np.bincount(rng.integers(0, 10, n), minlength=10) for n in (900, 100)]
    assert canary.class_p_value(*same) > 0.01
    collapsed = np.zeros(10, int)
    collapsed[5] = 100
    assert canary.class_p_value(same[0], collapsed) < 1e-20
    assert canary.class_p_value([0, 5, 0], [0, 7, 0]) == 1.0           # one class only
    assert canary.class_p_value([3, 4], [0, 0]) == 1.0                 # nothing to compare
    with pytest.raises(ValueError, match="same length"):
        canary.class_p_value([1, 2, 3], [1, 2])


def test_class_shift_is_the_share_of_answers_that_change_class():
    assert canary.class_shift([50, 50, 0], [5, 5, 0]) == 0.0
    assert canary.class_shift([10, 0], [0, 3]) == 1.0
    assert canary.class_shift([60, 40], [40, 60]) == pytest.approx(0.2)
    assert canary.class_shift([1, 2], [0, 0]) == 0.0
    with pytest.raises(ValueError):
        canary.class_shift([1, 2], [1])


def window(requests, errors=0, p95_bucket=0.01):
    bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, math.inf]
    return canary.Window(requests, errors, [(b, 0.0 if b < p95_bucket else requests) for b in bounds])


def test_rule_waits_for_the_minimum_then_names_each_reason():
    rule = canary.RollbackRule(min_requests=100, alpha=1e-3)
    even = [10] * 10
    skewed = [0] * 10
    skewed[3] = 99
    assert rule.check(window(900), window(99, errors=50), [90] * 10, skewed)[0] == []   # too few yet
    reasons, stats = rule.check(window(900), window(100, errors=10), [90] * 10, even)
    assert len(reasons) == 1 and reasons[0].startswith("error ratio") and stats["canary_error_ratio"] == 0.1
    reasons, _ = rule.check(window(900, p95_bucket=0.01), window(100, p95_bucket=0.1), [90] * 10, even)
    assert len(reasons) == 1 and reasons[0].startswith("p95")
    skewed[3] = 100
    reasons, _ = rule.check(window(900), window(100), [90] * 10, skewed)
    assert len(reasons) == 1 and "classes differ" in reasons[0]
    assert rule.check(window(900), window(100), [90] * 10, even)[0] == []
    slightly = [103_000, 97_000] + [100_000] * 8         # significant but 0.3% of answers moved
    reasons, stats = rule.check(window(9e6), window(1e6), [900_000] * 10, slightly)
    assert stats["class_p_value"] < 1e-9 and stats["class_shift"] == pytest.approx(0.003)
    assert reasons == []
    assert rule.check(window(900, errors=90), window(100, errors=11), [90] * 10, even)[0] == []


def test_predicted_class_reads_tf_serving_answers():
    assert canary.predicted_class(b'{"predictions": [{"class_id": 7, "probabilities": [0.1]}]}') == 7
    assert canary.predicted_class(b'{"error": "bad"}') == -1
    assert canary.predicted_class(b"not json") == -1


@pytest.fixture(scope="module")
def labelled_server(tiny_served_model, tmp_path_factory):
    """The tiny classifier as versions 1 and 2 (same weights), labelled stable and canary."""
    import shutil

    from helpers.serving import config, launcher

    base = tmp_path_factory.mktemp("canary") / "clf"
    shutil.copytree(tiny_served_model / "1", base / "1")
    shutil.copytree(tiny_served_model / "1", base / "2")
    path = base.parent / "models.config"
    path.write_text(config.model_config_text([{"name": "clf", "base_path": base, "policy": [1, 2]}]))
    with launcher.ModelServer("clf", None, [f"--model_config_file={path}", "--enable_monitoring",
                                            "--model_config_file_poll_wait_seconds=0.2"]) as server:
        launcher.wait_for(lambda: _available(server) == [1, 2], 30, "both versions")
        path.write_text(config.model_config_text([{"name": "clf", "base_path": base, "policy": [1, 2],
                                                   "labels": {"stable": 1, "canary": 2}}]))
        launcher.wait_for(lambda: _label(server, "canary") == 2, 30, "the labels")
        yield server, path, base


def _available(server):
    import requests

    rows = requests.get(f"{server.rest_url}/v1/models/clf", timeout=5).json()["model_version_status"]
    return sorted(int(r["version"]) for r in rows if r["state"] == "AVAILABLE")


def _label(server, label):
    import requests

    reply = requests.get(f"{server.rest_url}/v1/models/clf/labels/{label}/metadata", timeout=5)
    return int(reply.json()["model_spec"]["version"]) if reply.status_code == 200 else None


def test_run_checks_at_exact_counts_and_rolls_back_on_the_rule(labelled_server):
    import json

    server, _, _ = labelled_server
    rng = np.random.default_rng(1)
    bodies = [json.dumps({"instances": rng.random((1, 28, 28, 1)).tolist()}).encode() for _ in range(20)]
    quiet_rule = canary.RollbackRule(min_requests=10, p95_slack_s=1.0, alpha=1e-9)    # same model: no reason
    quiet = canary.run(server.rest_url, "clf", bodies, (1, 2), quiet_rule, canary.Splitter(0.25), 200, 50,
                       concurrency=2, seed=3)
    assert not quiet.rolled_back and [row["requests"] for row in quiet.timeline] == [50, 100, 150, 200]
    assert quiet.canary_requests_sent == 50 and len(quiet.records) == 200
    assert quiet.timeline[-1]["canary_requests"] == 50 and quiet.timeline[-1]["stable_requests"] == 150
    assert all(record[4] == 200 for record in quiet.records)
    assert sorted(record[1] for record in quiet.records) == list(range(200))
    bodies_used = {record[2] for record in quiet.records if record[3]}
    assert len(bodies_used) > 10                             # the canary sees all kinds of images
    strict = canary.RollbackRule(min_requests=20, max_error_excess=-1.0)     # fires once 20 canary answers
    calls = []
    loud = canary.run(server.rest_url, "clf", bodies, (1, 2), strict, canary.Splitter(0.25), 200, 40,
                      concurrency=2, on_rollback=lambda: calls.append(1), label_moved=lambda: True)
    assert loud.rolled_back and loud.decided_at_request == 80 and calls == [1]
    assert loud.canary_requests_sent == 20                     # nothing more after the decision
    assert loud.detect_s is not None and loud.detect_s > 0 and loud.label_moved_s is not None
    assert [row["rollback"] for row in loud.timeline] == [False, True, False, False, False]
    with pytest.raises(ValueError):
        canary.run(server.rest_url, "clf", bodies, (1, 2), strict, canary.Splitter(0.25), 10, 40)


def test_shadow_compares_the_candidate_with_stable(labelled_server):
    import json

    server, _, _ = labelled_server
    bodies = [json.dumps({"instances": np.full((1, 28, 28, 1), i / 10).tolist()}).encode() for i in range(10)]
    same = canary.shadow(server.rest_url, "clf", bodies, 2, 20)
    assert same["agreement"] == 1.0 and same["candidate_errors"] == 0 and same["requests"] == 20
    missing = canary.shadow(server.rest_url, "clf", bodies, 9, 10)      # version 9 is not loaded: 404
    assert missing["agreement"] == 0.0 and missing["candidate_errors"] == 10
    assert missing["stable_p50_ms"] > 0


def test_class_p_values_match_chi2_contingency_table_by_table():
    rng = np.random.default_rng(1)
    stable = rng.integers(0, 30, (200, 10)) * (rng.random((200, 10)) < 0.7)
    canary_ = rng.integers(0, 30, (200, 10)) * (rng.random((200, 10)) < 0.7)
    stable[:20], canary_[:20] = 0, 0                          # one class left on some rows, two on others
    stable[:20, 3], canary_[:20, 3], canary_[10:20, 5] = 5, 4, 2
    expected = [canary.class_p_value(s, c) for s, c in zip(stable, canary_)]
    assert canary.class_p_values(stable, canary_) == pytest.approx(expected, rel=1e-9, abs=1e-300)
    assert canary.class_p_values(stable[0], canary_[0]) == pytest.approx(expected[0])
    with pytest.raises(ValueError):
        canary.class_p_values(stable[:, :9], canary_)


def test_replay_never_fires_on_twins_always_on_a_broken_version_and_waits_for_min_requests():
    rng = np.random.default_rng(2)
    stable = rng.integers(0, 10, 500)
    rule = canary.RollbackRule(min_requests=50, alpha=1e-3, min_class_shift=0.5)
    twins = canary.replay_class_rule(stable, stable, rule, 0.1, 1000, 100, runs=300, seed=3)
    assert twins["rolled_back"] == 0 and twins["runs"] == 300
    assert (twins["largest_shift"] < 0.5).all()
    broken = canary.replay_class_rule(stable, np.zeros(500, int), rule, 0.1, 1000, 100, runs=300, seed=3)
    assert broken["rolled_back"] == 300
    assert set(broken["first_fire"]) == {500}                 # 50 canary answers after 500 requests
    assert (broken["lowest_p_early"] < 1e-3).all()            # the test would have fired earlier
    eager = canary.replay_class_rule(stable, np.zeros(500, int), canary.RollbackRule(0, alpha=1e-3),
                                     0.1, 1000, 100, runs=50, seed=3)
    assert set(eager["first_fire"]) < {100, 200}
    with pytest.raises(ValueError):
        canary.replay_class_rule(stable, stable[:10], rule, 0.1, 1000, 100, runs=10)
