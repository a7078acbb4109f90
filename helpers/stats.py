"""Paired comparisons of two models on the same test images, and intervals for seed means.

Two models scored on the same images are not independent samples: most images are easy for
both. Comparing their accuracies with two separate confidence intervals wastes that pairing and
calls real differences noise. The paired tools here use it:

- **McNemar's exact test** looks only at the images on which the two models disagree (``b``: A
  right and B wrong, ``c``: A wrong and B right) and asks whether ``c`` vs ``b`` could be a fair
  coin's split (a two-sided binomial test);
- a **paired bootstrap** resamples images (both models' outcomes together) and gives a
  confidence interval of the accuracy difference;
- **per-class deltas** show where a difference comes from.

``compare`` returns all three; ``PairedComparison.verdict`` says in words whether a difference is
within noise. Standard deviations and t-intervals over seeds use ``ddof=1`` (:func:`mean_ci`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from helpers import env

ALPHA = 0.05


def _correct(y_true, predicted) -> np.ndarray:
    y_true, predicted = np.asarray(y_true), np.asarray(predicted)
    if predicted.ndim == 2:                      # probabilities or logits: take the class
        predicted = predicted.argmax(axis=1)
    if predicted.shape != y_true.shape:
        raise ValueError(f"{predicted.shape[0] if predicted.ndim else 0} predictions for "
                         f"{y_true.shape[0]} labels")
    return predicted == y_true


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """McNemar's exact test on paired outcomes; returns ``(b, c, p_value)``.

    ``b``: images model A gets right and B wrong; ``c``: the reverse. The p-value is the
    two-sided binomial probability of a split at least as uneven as ``b`` : ``c`` when each
    disagreement is a fair coin toss (1.0 when the models never disagree).
    """
    from scipy.stats import binomtest

    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if correct_a.shape != correct_b.shape:
        raise ValueError(f"Paired outcomes differ in shape: {correct_a.shape} vs {correct_b.shape}")
    b = int(np.sum(correct_a & ~correct_b))
    c = int(np.sum(~correct_a & correct_b))
    p_value = 1.0 if b + c == 0 else float(binomtest(c, b + c, 0.5).pvalue)
    return b, c, p_value


def paired_bootstrap(correct_a: np.ndarray, correct_b: np.ndarray, samples: int = 2_000,
                     confidence: float = 0.95, seed: int = env.DEFAULT_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of ``accuracy(B) - accuracy(A)``, resampling images.

    Both models' outcomes on a resampled image travel together, which is what makes the
    interval paired (and much narrower than two independent intervals).
    """
    if samples < 100:
        raise ValueError(f"A bootstrap needs at least 100 resamples, got {samples}")
    difference = np.asarray(correct_b, np.int8) - np.asarray(correct_a, np.int8)
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for start in range(0, samples, 250):         # chunks keep the index matrix small
        count = min(250, samples - start)
        indices = rng.integers(0, len(difference), size=(count, len(difference)))
        means[start:start + count] = difference[indices].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def per_class_delta(y_true, predicted_a, predicted_b, classes: int) -> np.ndarray:
    """Per-class accuracy (recall) of B minus that of A, in points, one value per class."""
    y_true = np.asarray(y_true)
    correct_a, correct_b = _correct(y_true, predicted_a), _correct(y_true, predicted_b)
    deltas = np.zeros(classes)
    for label in range(classes):
        members = y_true == label
        if members.any():
            deltas[label] = 100 * (correct_b[members].mean() - correct_a[members].mean())
    return deltas


@dataclass(frozen=True)
class PairedComparison:
    """Model B against model A on the same images (differences are B − A, in points)."""

    name_a: str
    name_b: str
    accuracy_a: float
    accuracy_b: float
    diff_pt: float
    ci_low_pt: float
    ci_high_pt: float
    only_a_right: int
    only_b_right: int
    p_value: float
    per_class_pt: tuple

    @property
    def significant(self) -> bool:
        """True when McNemar rejects equality at 5% *and* the interval excludes zero."""
        return self.p_value < ALPHA and (self.ci_low_pt > 0 or self.ci_high_pt < 0)

    def verdict(self) -> str:
        """``"within noise"``, ``"B better"`` or ``"B worse"`` (with the names filled in)."""
        if not self.significant:
            return "within noise"
        return f"{self.name_b} better" if self.diff_pt > 0 else f"{self.name_b} worse"

    def row(self) -> dict:
        """One table row: the difference, its 95% interval, McNemar's p and the verdict."""
        return {"accuracy": self.accuracy_b, "vs " + self.name_a + " (pt)": self.diff_pt,
                "95% CI (pt)": f"[{self.ci_low_pt:+.2f}, {self.ci_high_pt:+.2f}]",
                "McNemar p": self.p_value, "verdict": self.verdict()}


def compare(y_true, predicted_a, predicted_b, name_a: str = "A", name_b: str = "B",
            samples: int = 2_000, seed: int = env.DEFAULT_SEED, classes: int = 10) -> PairedComparison:
    """Compare two models' predictions (class ids, or N×classes scores) on the same labels."""
    correct_a, correct_b = _correct(y_true, predicted_a), _correct(y_true, predicted_b)
    b, c, p_value = mcnemar_exact(correct_a, correct_b)
    low, high = paired_bootstrap(correct_a, correct_b, samples, seed=seed)
    return PairedComparison(
        name_a, name_b, float(correct_a.mean()), float(correct_b.mean()),
        100 * float(correct_b.mean() - correct_a.mean()), 100 * low, 100 * high, b, c, p_value,
        tuple(float(d) for d in per_class_delta(y_true, predicted_a, predicted_b, classes)))


def table(comparisons):
    """A table of paired comparisons, one row each (``"B − A"``): both accuracies, the
    difference in points with its paired 95% interval, the images only one model gets right,
    McNemar's p and the verdict."""
    import pandas as pd

    return pd.DataFrame({f"{c.name_b} − {c.name_a}": {
        "accuracy A": round(c.accuracy_a, 4), "accuracy B": round(c.accuracy_b, 4),
        "B − A (pt)": round(c.diff_pt, 2), "95% CI (pt)": f"[{c.ci_low_pt:+.2f}, {c.ci_high_pt:+.2f}]",
        "only A right": c.only_a_right, "only B right": c.only_b_right,
        "McNemar p": float(f"{c.p_value:.3g}"), "verdict": c.verdict()} for c in comparisons}).T


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of a few repeated measurements (e.g. one per seed) and its t-interval (ddof=1).

    Returns ``(mean, low, high)``; needs at least two values.
    """
    from scipy.stats import t

    values = np.asarray(values, dtype=float)
    if values.size < 2:
        raise ValueError("An interval needs at least two values")
    mean, sem = float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))
    half = float(t.ppf(0.5 + confidence / 2, df=values.size - 1)) * sem
    return mean, mean - half, mean + half
