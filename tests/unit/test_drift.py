import math

import numpy as np
import pytest

from helpers import drift


def _gaussians(n_ref=300, n_win=60, d=5, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_ref, d)), rng.normal(size=(n_win, d)) + shift


def test_corrections_match_hand_values():
    p = [0.01, 0.04, 0.03, 0.5]
    np.testing.assert_allclose(drift.bonferroni(p), [0.04, 0.16, 0.12, 1.0])
    # BH: sorted 0.01, 0.03, 0.04, 0.5 -> p*4/rank = 0.04, 0.06, 0.0533, 0.5; then running minimum
    np.testing.assert_allclose(drift.benjamini_hochberg(p), [0.04, 0.16 / 3, 0.16 / 3, 0.5])


def test_ks_flags_a_shift_and_not_the_same_distribution():
    reference, same = _gaussians()
    _, shifted = _gaussians(shift=1.0)
    assert drift.ks_per_feature(reference, shifted).drift
    result = drift.ks_per_feature(reference, same)
    assert not result.drift and 0 < result.p_value <= 1
    assert drift.ks_per_feature(reference, shifted, correction="bh").p_value < 1e-3
    with pytest.raises(ValueError, match="features"):
        drift.ks_per_feature(reference, same[:, :3])
    with pytest.raises(ValueError, match="correction"):
        drift.ks_per_feature(reference, same, correction="holm")
    with pytest.raises(ValueError, match="NaN"):
        drift.ks_per_feature(reference, np.full((10, 5), np.nan))


def test_bonferroni_keeps_the_family_wise_false_alarm_rate_near_alpha():
    """100 features, 200 windows with no shift: uncorrected tests would flag almost every window."""
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(400, 100))
    draws = [drift.ks_per_feature(reference, rng.normal(size=(50, 100))).drift for _ in range(200)]
    assert np.mean(draws) <= 0.09            # alpha = 0.05 (Bonferroni is conservative)
    raw = [drift.ks_per_feature(reference, rng.normal(size=(50, 100)), correction="none").drift
           for _ in range(50)]
    assert np.mean(raw) >= 0.8               # 1 - 0.95**100 = 0.994 for independent features


def test_fit_pca_projects_onto_the_reference_principal_axes():
    rng = np.random.default_rng(10)
    reference = rng.normal(size=(500, 4)) * [5.0, 1.0, 0.1, 0.01]
    project = drift.fit_pca(reference, 2)
    projected = project(reference)
    assert projected.shape == (500, 2)
    np.testing.assert_allclose(projected.mean(axis=0), 0, atol=1e-9)
    assert projected[:, 0].std() == pytest.approx(5.0, rel=0.1)       # the largest axis first
    assert abs(np.corrcoef(projected.T)[0, 1]) < 1e-9                  # decorrelated
    with pytest.raises(ValueError, match="Fitted"):
        project(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="components"):
        drift.fit_pca(reference, 9)


def test_mmd2_matches_a_slow_double_loop():
    rng = np.random.default_rng(2)
    x, y, h = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.5, 1.3

    def k(a, b):
        return math.exp(-np.sum((a - b) ** 2) / (2 * h * h))
    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / (7 * 5)
    assert drift.mmd2_unbiased(x, y, h) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    # the batched form used by the permutation test agrees
    kernel = drift.rbf_kernel(np.r_[x, y], np.r_[x, y], h)
    split = np.r_[np.ones(7), np.zeros(5)][None, :]
    assert drift._mmd2_for_splits(kernel, split)[0] == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_rbf_kernel_and_median_bandwidth():
    x = np.array([[0.0], [1.0], [3.0]])
    np.testing.assert_allclose(drift.rbf_kernel(x, x, 1.0)[0], [1, math.exp(-0.5), math.exp(-4.5)])
    assert drift.median_bandwidth(x) == pytest.approx(2.0)     # distances 1, 3, 2
    with pytest.raises(ValueError, match="bandwidth"):
        drift.rbf_kernel(x, x, 0.0)
    with pytest.raises(ValueError, match="identical"):
        drift.median_bandwidth(np.zeros((5, 2)))


def test_mmd_permutation_p_value_is_exact_for_a_tiny_case():
    x, y = np.array([[0.0], [0.1]]), np.array([[5.0], [5.1]])
    result = drift.mmd_permutation_test(x, y, bandwidth=1.0, n_permutations=None)
    assert result.p_value == pytest.approx(2 / 6)     # the observed split and its mirror, of C(4,2)
    random = drift.mmd_permutation_test(x, y, 1.0, n_permutations=99, rng=np.random.default_rng(0))
    assert 0 < random.p_value <= 1 and random.p_value >= 1 / 100


def test_mmd_permutation_test_detects_a_shift_and_is_calibrated():
    reference, _ = _gaussians(n_ref=150)
    h = drift.median_bandwidth(reference)
    _, shifted = _gaussians(n_ref=150, shift=0.8, seed=3)
    rng = np.random.default_rng(4)
    assert drift.mmd_permutation_test(reference, shifted, h, 200, rng).drift
    draws = [drift.mmd_permutation_test(reference, rng.normal(size=(30, 5)), h, 100, rng).drift
             for _ in range(150)]
    assert 0.0 <= np.mean(draws) <= 0.12       # alpha = 0.05, 150 windows
    with pytest.raises(ValueError, match="n_permutations"):
        drift.mmd_permutation_test(reference, shifted, h, 0, rng)


def test_psi_hand_value_and_empty_categories():
    r, w = [50, 50], [25, 75]
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert drift.psi(r, w) == pytest.approx(expected)
    assert drift.psi(r, r) == 0.0
    empty = drift.psi([50, 50, 0], [50, 40, 10], eps=1e-4)      # ln(0.1 / 1e-4), not infinity
    assert math.isfinite(empty) and empty > 0.5
    with pytest.raises(ValueError, match="categories"):
        drift.psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        drift.psi([1, -2], [1, 2])


def test_chi2_is_calibrated_where_psi_threshold_is_not_at_small_windows():
    rng = np.random.default_rng(5)
    prior = np.full(10, 0.1)
    reference = rng.multinomial(2_000, prior)
    windows = [rng.multinomial(30, prior) for _ in range(300)]
    chi2_rate = np.mean([drift.chi2_test(reference, w).drift for w in windows])
    psi_rate = np.mean([drift.psi(reference, w) > 0.25 for w in windows])
    assert chi2_rate <= 0.1 and psi_rate >= 0.5
    skewed = rng.multinomial(200, [0.5] + [0.5 / 9] * 9)
    assert drift.chi2_test(reference, skewed).drift
    assert drift.chi2_test([5, 0], [3, 0]).p_value == 1.0        # one category: nothing to test


def test_shifts_change_images_as_named():
    rng = np.random.default_rng(6)
    images = rng.uniform(0.2, 0.6, size=(4, 28, 28, 1)).astype(np.float32)
    assert drift.brightness(images, 0.3).mean() == pytest.approx(images.mean() + 0.3, abs=1e-5)
    assert drift.brightness(images, 0.9).max() == 1.0
    bar = np.zeros((1, 28, 28, 1), np.float32)
    bar[0, 13:15, :, 0] = 1.0                                 # a horizontal bar
    turned = drift.rotate(bar, 90)
    assert turned[0, :, 13:15, 0].mean() > 0.8 and turned[0, 13:15, :3, 0].mean() < 0.2
    noisy = drift.gaussian_noise(images, 0.1, rng)
    assert 0.08 < np.std(noisy - images) < 0.12
    covered = drift.occlude(np.zeros((3, 28, 28, 1), np.float32), 6, rng, value=1.0)
    assert np.all(covered.sum(axis=(1, 2, 3)) == 36)
    with pytest.raises(ValueError, match="size"):
        drift.occlude(images, 40, rng)


def test_class_mix_and_ood_digits():
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(10), 100)
    chosen = drift.class_mix_indices(labels, 200, [5.0] + [1.0] * 9, rng)
    assert len(np.unique(chosen)) == 200
    assert 0.25 < np.mean(labels[chosen] == 0) < 0.5          # 5/14 = 0.36 expected, not 0.1
    with pytest.raises(ValueError, match="drawn"):
        drift.class_mix_indices(labels, 200, [1.0] + [0.0] * 9, rng)
    digits = drift.ood_digits(5, rng)
    assert digits.shape == (5, 28, 28, 1) and digits.min() >= 0 and digits.max() <= 1
    assert digits.max() > 0.5


def test_wilson_interval_hand_values():
    low, high = drift.wilson_interval(0, 100)
    assert low == 0.0 and high == pytest.approx(0.0370, abs=1e-3)
    assert drift.wilson_interval(100, 100) == (pytest.approx(0.9630, abs=1e-3), 1.0)
    low, high = drift.wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3) and high == pytest.approx(0.5962, abs=1e-3)
    with pytest.raises(ValueError):
        drift.wilson_interval(5, 3)


def test_flag_rate_power_curve_and_smallest_window():
    rng = np.random.default_rng(8)
    reference = rng.normal(size=(500, 3))
    pool = rng.normal(size=(2_000, 3)) + 0.3

    def detector(indices):
        return drift.ks_per_feature(reference, pool[indices]).drift

    draw = drift.uniform_windows(len(pool))
    assert len(set(draw(100, rng))) == 100
    curve = drift.power_curve(detector, draw, [10, 300], 40, rng)
    assert curve[10].rate < curve[300].rate and curve[300].rate >= 0.9
    assert curve[300].low <= curve[300].rate <= curve[300].high and curve[300].n == 40
    assert drift.smallest_window(curve, 0.9) == 300
    assert drift.smallest_window(curve, 1.01) is None
    never = drift.flag_rate(lambda idx: False, draw, 10, 20, rng)
    assert never.rate == 0.0 and never.high > 0
    with pytest.raises(ValueError, match="pool"):
        draw(5_000, rng)


def test_atc_estimates_accuracy_from_confidence():
    rng = np.random.default_rng(9)
    confidence = rng.uniform(0.3, 1.0, 5_000)
    correct = rng.uniform(size=5_000) < confidence            # calibrated: P(correct) = confidence
    threshold = drift.atc_threshold(confidence, correct)
    assert drift.atc_estimate(confidence, threshold) == pytest.approx(correct.mean(), abs=0.005)
    lower = confidence * 0.8                                   # a shift lowers confidence
    assert drift.atc_estimate(lower, threshold) < correct.mean() - 0.1
    with pytest.raises(ValueError, match="shape"):
        drift.atc_threshold(confidence, correct[:10])


def test_ks_p_values_and_adjust_give_the_verdict_of_ks_per_feature():
    reference, same = _gaussians(d=8, seed=3)
    _, shifted = _gaussians(d=8, shift=0.6, seed=4)
    for window in (same, shifted):
        p = drift.ks_p_values(reference, window)
        assert p.shape == (8,) and ((p > 0) & (p <= 1)).all()
        for correction in ("none", "bh", "bonferroni"):
            result = drift.ks_per_feature(reference, window, correction=correction)
            assert drift.adjust(p, correction).min() == pytest.approx(result.p_value)
    np.testing.assert_allclose(drift.adjust([0.01, 0.2], "bonferroni"), [0.02, 0.4])
    np.testing.assert_allclose(drift.adjust([0.01, 0.2], "none"), [0.01, 0.2])
    assert drift.ks_p_values(reference, shifted).min() < 1e-3
    with pytest.raises(ValueError, match="correction"):
        drift.adjust([0.1], "holm")
