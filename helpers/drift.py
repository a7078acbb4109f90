"""Two-sample drift tests and their evaluation: detection power and false-alarm rate.

A drift detector answers one question about a *window* of production inputs: were they drawn
from the same distribution as a *reference* sample? This module holds the tests (KS per feature
with a multiple-testing correction, MMD with a permutation test, PSI and a chi-square test on
predicted classes), the shifts notebook 13b injects into images, the windowed evaluation
(the fraction of windows flagged, with a Wilson interval) and a label-free accuracy estimate
(ATC, Garg et al. 2022).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

Detector = Callable[[np.ndarray], bool]          # window indices -> drift?
WindowDraw = Callable[[int, np.random.Generator], np.ndarray]   # (size, rng) -> indices


@dataclass(frozen=True)
class TestResult:
    """One test on one window: its statistic, its (corrected) p-value and the verdict."""

    __test__ = False                     # not a pytest class
    statistic: float
    p_value: float
    drift: bool


@dataclass(frozen=True)
class Rate:
    """The fraction of ``n`` windows flagged, with its Wilson interval ``[low, high]``."""

    rate: float
    low: float
    high: float
    n: int


def _two_d(name: str, values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, np.newaxis]
    if array.ndim != 2 or len(array) < 2:
        raise ValueError(f"{name} must be (samples, features) with at least 2 samples, got shape "
                         f"{np.shape(values)}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")


# --- multiple testing -----------------------------------------------------------------------

def bonferroni(p_values: Sequence[float]) -> np.ndarray:
    """Bonferroni-adjusted p-values: ``min(p * d, 1)`` for ``d`` tests (controls the
    family-wise error rate: P(any false alarm) <= alpha when each adjusted p is compared to alpha)."""
    p = np.asarray(p_values, dtype=np.float64)
    return np.minimum(p * p.size, 1.0)


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (false discovery rate), by ``scipy.stats``."""
    from scipy.stats import false_discovery_control

    return false_discovery_control(np.asarray(p_values, dtype=np.float64), method="bh")


def no_correction(p_values: Sequence[float]) -> np.ndarray:
    """The p-values as they are: what a per-feature test without a correction compares to alpha."""
    return np.asarray(p_values, dtype=np.float64)


_CORRECTIONS = {"bonferroni": bonferroni, "bh": benjamini_hochberg, "none": no_correction}


def adjust(p_values: Sequence[float], correction: str = "bonferroni") -> np.ndarray:
    """The p-values adjusted by the correction named ``"bonferroni"``, ``"bh"`` or ``"none"``."""
    if correction not in _CORRECTIONS:
        raise ValueError(f"correction must be one of {sorted(_CORRECTIONS)}, got {correction!r}")
    return _CORRECTIONS[correction](p_values)


def _ks(reference, window) -> tuple[np.ndarray, np.ndarray]:
    from scipy.stats import ks_2samp

    reference, window = _two_d("reference", reference), _two_d("window", window)
    if reference.shape[1] != window.shape[1]:
        raise ValueError(f"reference has {reference.shape[1]} features, window {window.shape[1]}")
    result = ks_2samp(reference, window, axis=0)
    return np.atleast_1d(result.statistic), np.nan_to_num(np.atleast_1d(result.pvalue), nan=1.0)


def ks_p_values(reference, window) -> np.ndarray:
    """The uncorrected two-sample KS p-value of every feature (column), ``scipy.stats.ks_2samp``.

    Compute them once per window, then :func:`adjust` them with several corrections."""
    return _ks(reference, window)[1]


def ks_per_feature(reference, window, alpha: float = 0.05,
                   correction: str = "bonferroni") -> TestResult:
    """Two-sample Kolmogorov–Smirnov test on every feature (column), one corrected verdict.

    ``scipy.stats.ks_2samp(..., axis=0)`` tests each column; the ``d`` p-values are adjusted
    (``"bonferroni"``, ``"bh"``; ``"none"`` shows why a correction is needed) and the window is
    flagged when the smallest adjusted p-value is below ``alpha``. Returns the largest KS
    statistic and that smallest adjusted p-value.
    Without a correction, d independent tests at alpha flag a window with probability
    1 - (1 - alpha)^d under no drift (0.92 for d = 50).
    """
    _check_alpha(alpha)
    if correction not in _CORRECTIONS:
        raise ValueError(f"correction must be one of {sorted(_CORRECTIONS)}, got {correction!r}")
    statistics, p_values = _ks(reference, window)
    adjusted = float(adjust(p_values, correction).min())
    return TestResult(float(np.nanmax(statistics)), adjusted, adjusted < alpha)


def fit_pca(reference, components: int) -> Callable[[np.ndarray], np.ndarray]:
    """Fit a PCA on the reference (flattened to rows) and return the projection onto its first
    ``components`` principal axes: fewer, decorrelated features for the tests, fitted once on
    the reference and applied unchanged to every window."""
    x = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    if not 0 < components <= min(x.shape):
        raise ValueError(f"components must be between 1 and {min(x.shape)}, got {components}")
    mean = x.mean(axis=0)
    axes = np.linalg.svd(x - mean, full_matrices=False)[2][:components]

    def project(values: np.ndarray) -> np.ndarray:
        flat = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
        if flat.shape[1] != mean.size:
            raise ValueError(f"Fitted on {mean.size} features, got {flat.shape[1]}")
        return (flat - mean) @ axes.T
    return project


# --- MMD with a permutation test ------------------------------------------------------------

def median_bandwidth(reference, max_points: int = 1_000, seed: int = 0) -> float:
    """The median heuristic: the median Euclidean distance between reference points (a sample
    of at most ``max_points`` of them), used as the RBF kernel's bandwidth."""
    x = _two_d("reference", reference)
    if len(x) > max_points:
        x = x[np.random.default_rng(seed).choice(len(x), max_points, replace=False)]
    squared = np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
    distances = np.sqrt(squared[np.triu_indices(len(x), k=1)])
    bandwidth = float(np.median(distances))
    if bandwidth <= 0:
        raise ValueError("The reference points are (mostly) identical: no bandwidth to use")
    return bandwidth


def rbf_kernel(x, y, bandwidth: float) -> np.ndarray:
    """The Gaussian (RBF) kernel matrix ``exp(-|x_i - y_j|^2 / (2 bandwidth^2))``."""
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    squared = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.exp(-np.maximum(squared, 0.0) / (2.0 * bandwidth ** 2))


def mmd2_unbiased(x, y, bandwidth: float) -> float:
    """The unbiased estimate of the squared maximum mean discrepancy between samples x and y:

    mean k(x_i, x_j) over i != j  +  mean k(y_i, y_j) over i != j  -  2 mean k(x_i, y_j).

    Zero on average when both come from one distribution (it can be slightly negative).
    """
    x, y = _two_d("x", x), _two_d("y", y)
    m, n = len(x), len(y)
    kxx, kyy, kxy = rbf_kernel(x, x, bandwidth), rbf_kernel(y, y, bandwidth), rbf_kernel(x, y, bandwidth)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


def _mmd2_for_splits(kernel: np.ndarray, is_x: np.ndarray) -> np.ndarray:
    """MMD² for many relabellings of the pooled points at once.

    ``kernel`` is the pooled (N×N) kernel matrix, ``is_x`` a (P×N) 0/1 matrix: row p marks the
    points that relabelling p calls "x". One matrix product gives every block sum:
    a'Ka (x with x), a'K1 - a'Ka (x with y), 1'K1 - 2a'K1 + a'Ka (y with y).
    """
    m = is_x[0].sum()
    n = kernel.shape[0] - m
    diagonal, row_sums = np.diag(kernel), kernel.sum(axis=1)
    x_x = np.einsum("pi,pi->p", is_x @ kernel, is_x)
    x_all = is_x @ row_sums
    y_y = row_sums.sum() - 2.0 * x_all + x_x
    x_y = x_all - x_x
    diag_x = is_x @ diagonal
    diag_y = diagonal.sum() - diag_x
    return (x_x - diag_x) / (m * (m - 1)) + (y_y - diag_y) / (n * (n - 1)) - 2.0 * x_y / (m * n)


def mmd_permutation_test(x, y, bandwidth: float, n_permutations: int | None = 200,
                         rng: np.random.Generator | None = None, alpha: float = 0.05) -> TestResult:
    """MMD² of x against y and its permutation p-value.

    Under "no drift" the labels x/y are exchangeable: pool the points, compute the kernel matrix
    once, and recompute MMD² for ``n_permutations`` random relabellings (one matrix product for
    all). p = (1 + #{permuted >= observed}) / (1 + n_permutations), never 0. With
    ``n_permutations=None`` every split is enumerated and p is exact (tiny samples only).
    """
    _check_alpha(alpha)
    x, y = _two_d("x", x), _two_d("y", y)
    m, total = len(x), len(x) + len(y)
    kernel = rbf_kernel(np.concatenate([x, y]), np.concatenate([x, y]), bandwidth)
    observed_split = np.zeros((1, total))
    observed_split[0, :m] = 1.0
    observed = float(_mmd2_for_splits(kernel, observed_split)[0])
    if n_permutations is None:                      # exact: every way to choose the m "x" points
        splits = list(combinations(range(total), m))
        if len(splits) > 100_000:
            raise ValueError(f"{len(splits):,} splits: too many to enumerate, give n_permutations")
        is_x = np.zeros((len(splits), total))
        is_x[np.repeat(np.arange(len(splits)), m), np.concatenate(splits)] = 1.0
        permuted = _mmd2_for_splits(kernel, is_x)
        p_value = float(np.mean(permuted >= observed - 1e-12))
    else:
        if n_permutations < 1:
            raise ValueError(f"n_permutations must be at least 1, got {n_permutations}")
        rng = rng if rng is not None else np.random.default_rng()
        order = rng.permuted(np.tile(np.arange(total), (n_permutations, 1)), axis=1)
        is_x = np.zeros((n_permutations, total))
        np.put_along_axis(is_x, order[:, :m], 1.0, axis=1)
        permuted = _mmd2_for_splits(kernel, is_x)
        p_value = float((1 + np.sum(permuted >= observed - 1e-12)) / (1 + n_permutations))
    return TestResult(observed, p_value, p_value < alpha)


# --- predicted classes: PSI and a chi-square test -------------------------------------------

def _counts(name: str, counts) -> np.ndarray:
    array = np.asarray(counts, dtype=np.float64)
    if array.ndim != 1 or array.size < 2 or (array < 0).any() or array.sum() <= 0:
        raise ValueError(f"{name} must be non-negative counts over at least 2 categories, with a "
                         f"positive total; got {counts!r}")
    return array


def psi(reference_counts, window_counts, eps: float = 1e-4) -> float:
    """Population stability index: sum over categories of (w - r) * ln(w / r), with r and w the
    reference and window proportions, each floored at ``eps`` (an empty category would give an
    infinite log). Rule of thumb: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 major shift.
    The thresholds are fixed, whatever the window size: small windows raise false alarms."""
    r, w = _counts("reference_counts", reference_counts), _counts("window_counts", window_counts)
    if r.size != w.size:
        raise ValueError(f"{r.size} reference categories but {w.size} window categories")
    r, w = np.maximum(r / r.sum(), eps), np.maximum(w / w.sum(), eps)
    return float(np.sum((w - r) * np.log(w / r)))


def chi2_test(reference_counts, window_counts, alpha: float = 0.05) -> TestResult:
    """Chi-square test of homogeneity (``scipy.stats.chi2_contingency``) on the 2×k table of
    category counts: a calibrated alternative to PSI's fixed thresholds. Categories empty in
    both are dropped."""
    from scipy.stats import chi2_contingency

    _check_alpha(alpha)
    r, w = _counts("reference_counts", reference_counts), _counts("window_counts", window_counts)
    if r.size != w.size:
        raise ValueError(f"{r.size} reference categories but {w.size} window categories")
    table = np.stack([r, w])[:, (r + w) > 0]
    if table.shape[1] < 2:
        return TestResult(0.0, 1.0, False)
    result = chi2_contingency(table, correction=False)
    return TestResult(float(result.statistic), float(result.pvalue), float(result.pvalue) < alpha)


# --- shifts for images in [0, 1] (N×28×28×1) -------------------------------------------------

def brightness(images: np.ndarray, delta: float) -> np.ndarray:
    """Add ``delta`` to every pixel, clipped to [0, 1]."""
    return np.clip(images + delta, 0.0, 1.0).astype(np.float32)


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate every image by ``degrees`` about its centre (``scipy.ndimage.rotate``, bilinear,
    same size, zeros outside)."""
    from scipy.ndimage import rotate as nd_rotate

    turned = nd_rotate(images, degrees, axes=(1, 2), reshape=False, order=1, mode="constant")
    return np.clip(turned, 0.0, 1.0).astype(np.float32)


def gaussian_noise(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise of standard deviation ``sigma``, clipped to [0, 1]."""
    return np.clip(images + rng.normal(0.0, sigma, images.shape), 0.0, 1.0).astype(np.float32)


def occlude(images: np.ndarray, size: int, rng: np.random.Generator, value: float = 0.5) -> np.ndarray:
    """Cover a ``size``×``size`` square at a random position in each image with ``value``."""
    height, width = images.shape[1:3]
    if not 0 < size <= min(height, width):
        raise ValueError(f"size must be between 1 and {min(height, width)}, got {size}")
    out = np.array(images, dtype=np.float32, copy=True)
    tops = rng.integers(0, height - size + 1, len(out))
    lefts = rng.integers(0, width - size + 1, len(out))
    for image, top, left in zip(out, tops, lefts):
        image[top:top + size, left:left + size] = value
    return out


def class_mix_indices(labels: np.ndarray, size: int, weights: Sequence[float],
                      rng: np.random.Generator) -> np.ndarray:
    """Indices of a window of ``size`` examples drawn without replacement with a different class
    prior: example i is drawn with probability proportional to ``weights[labels[i]]`` (label
    shift: each image looks normal, only the mix of classes changes)."""
    labels = np.asarray(labels)
    weights = np.asarray(weights, dtype=np.float64)
    if (weights < 0).any() or labels.max() >= weights.size:
        raise ValueError(f"weights must be non-negative, one per class (labels go to {labels.max()})")
    probabilities = weights[labels]
    if np.count_nonzero(probabilities) < size:
        raise ValueError(f"Only {np.count_nonzero(probabilities)} examples can be drawn, asked {size}")
    return rng.choice(len(labels), size=size, replace=False, p=probabilities / probabilities.sum())


def ood_digits(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` out-of-distribution images: scikit-learn's bundled handwritten digits (1,797 images,
    8×8, 17 grey levels; no download), upsampled to 28×28 and scaled to [0, 1]."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    digits = load_digits().images / 16.0
    chosen = digits[rng.choice(len(digits), size=n, replace=n > len(digits))]
    big = zoom(chosen, (1, 28 / 8, 28 / 8), order=1)
    return np.clip(big, 0.0, 1.0).astype(np.float32)[..., np.newaxis]


# --- evaluation: how often is a window flagged? ----------------------------------------------

def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (well behaved at 0 and 1, unlike p ± z·se)."""
    from scipy.stats import norm

    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"Need 0 <= successes <= n and n > 0, got {successes} of {n}")
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, float(centre - half))      # exact ends, no rounding noise
    high = 1.0 if successes == n else min(1.0, float(centre + half))
    return low, high


def uniform_windows(pool_size: int) -> WindowDraw:
    """A window sampler: ``size`` distinct indices drawn uniformly from ``range(pool_size)``."""
    def draw(size: int, rng: np.random.Generator) -> np.ndarray:
        if size > pool_size:
            raise ValueError(f"A window of {size} from a pool of {pool_size}")
        return rng.choice(pool_size, size=size, replace=False)
    return draw


def flag_rate(detector: Detector, draw: WindowDraw, size: int, n_windows: int,
              rng: np.random.Generator) -> Rate:
    """The fraction of ``n_windows`` random windows of ``size`` that ``detector`` flags.

    Under a shift it is the detector's power; without one, its false-alarm rate.
    """
    flagged = sum(bool(detector(draw(size, rng))) for _ in range(n_windows))
    low, high = wilson_interval(flagged, n_windows)
    return Rate(flagged / n_windows, low, high, n_windows)


def power_curve(detector: Detector, draw: WindowDraw, sizes: Sequence[int], n_windows: int,
                rng: np.random.Generator) -> dict[int, Rate]:
    """:func:`flag_rate` for each window size: window size -> :class:`Rate`."""
    return {int(size): flag_rate(detector, draw, int(size), n_windows, rng) for size in sizes}


def smallest_window(curve: dict[int, Rate], target: float) -> int | None:
    """The smallest window size whose flag rate reaches ``target`` (None if none does)."""
    reached = [size for size, rate in sorted(curve.items()) if rate.rate >= target]
    return reached[0] if reached else None


# --- accuracy without labels ------------------------------------------------------------------

def atc_threshold(confidence, correct) -> float:
    """Average Thresholded Confidence (Garg et al., 2022): the confidence threshold t for which
    the share of examples above t equals the accuracy, fitted on labelled validation data."""
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=bool)
    if confidence.shape != correct.shape or confidence.size == 0:
        raise ValueError("confidence and correct must be non-empty and of the same shape")
    return float(np.quantile(confidence, 1.0 - correct.mean()))


def atc_estimate(confidence, threshold: float) -> float:
    """The accuracy ATC predicts on unlabelled data: the share of confidences above the threshold."""
    return float(np.mean(np.asarray(confidence) > threshold))
