import numpy as np
import pytest

from helpers import stats


def _outcomes(both=9_000, only_a=40, only_b=80, neither=880):
    """Paired correct/incorrect outcomes with the given counts of each case."""
    a = np.r_[np.ones(both), np.ones(only_a), np.zeros(only_b), np.zeros(neither)].astype(bool)
    b = np.r_[np.ones(both), np.zeros(only_a), np.ones(only_b), np.zeros(neither)].astype(bool)
    return a, b


def test_mcnemar_counts_disagreements_and_matches_the_binomial():
    a, b = _outcomes()
    only_a, only_b, p = stats.mcnemar_exact(a, b)
    assert (only_a, only_b) == (40, 80)
    assert p == pytest.approx(0.000335, rel=0.05)      # 2 * P(X <= 40), X ~ Bin(120, 0.5)
    assert stats.mcnemar_exact(a, a) == (0, 0, 1.0)
    _, _, p_even = stats.mcnemar_exact(*_outcomes(only_a=50, only_b=52))
    assert p_even > 0.8
    with pytest.raises(ValueError, match="shape"):
        stats.mcnemar_exact(a, b[:10])


def test_paired_bootstrap_brackets_the_difference_and_is_narrower_than_unpaired():
    a, b = _outcomes()
    low, high = stats.paired_bootstrap(a, b, samples=1_000, seed=0)
    diff = b.mean() - a.mean()                          # +0.4 pt
    assert low < diff < high and low > 0                # a real difference: excludes zero
    unpaired_half_width = 1.96 * np.sqrt(2 * 0.9 * 0.1 / len(a))
    assert (high - low) / 2 < unpaired_half_width / 2
    assert stats.paired_bootstrap(a, b, samples=1_000, seed=0) == (low, high)   # seeded


def test_compare_gives_the_verdict_and_per_class_deltas():
    y = np.repeat(np.arange(10), 100)
    pred_a = y.copy()
    pred_a[:30] = 1                                     # A misses 30 images of class 0
    pred_b = y.copy()
    pred_b[100:103] = 0                                 # B misses 3 images of class 1
    result = stats.compare(y, pred_a, pred_b, "A", "B", samples=500, seed=0)
    assert result.diff_pt == pytest.approx(2.7)
    assert result.per_class_pt[:2] == pytest.approx((30.0, -3.0))
    assert result.significant and result.verdict() == "B better"
    assert result.row()["verdict"] == "B better"
    scores = np.eye(10)[pred_b]                         # probabilities work as well as class ids
    assert stats.compare(y, pred_a, scores, samples=500).diff_pt == pytest.approx(2.7)
    noise = stats.compare(y, y, np.where(np.arange(1000) == 5, 9, y), samples=500)
    assert not noise.significant and noise.verdict() == "within noise"


def test_mean_ci_uses_the_t_distribution_with_ddof_1():
    mean, low, high = stats.mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert high - mean == pytest.approx(4.303 * 1.0 / np.sqrt(3), rel=1e-3)   # t(0.975, 2) * s/√n
    assert low == pytest.approx(2 * mean - high)
    with pytest.raises(ValueError):
        stats.mean_ci([1.0])
