"""Consistent figures for the notebooks: one style, labelled axes, titles that say what is shown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")


def _plt():
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3,
                         "axes.spines.top": False, "axes.spines.right": False,
                         "axes.prop_cycle": plt.cycler(color=PALETTE), "font.size": 10})
    return plt


def image_grid(images: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
               per_class: int = 8, seed: int = 0):
    """A grid with ``per_class`` example images for each class (one row per class)."""
    plt = _plt()
    rng = np.random.default_rng(seed)
    classes = len(class_names)
    fig, axes = plt.subplots(classes, per_class, figsize=(per_class * 0.9, classes * 0.95))
    for row, name in enumerate(class_names):
        chosen = rng.choice(np.flatnonzero(labels == row), size=per_class, replace=False)
        for col, index in enumerate(chosen):
            ax = axes[row, col]
            ax.imshow(images[index], cmap="gray_r")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(f"{per_class} random images per class")
    fig.tight_layout()
    return fig


def bar(values: Mapping[str, float], title: str, ylabel: str, fmt: str = "{:.0f}"):
    """A labelled bar chart of ``values`` (category -> number)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    bars = ax.bar(list(values), list(values.values()), color=PALETTE[0])
    ax.bar_label(bars, labels=[fmt.format(v) for v in values.values()], fontsize=8)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def grouped_bars(series: Mapping[str, Sequence[float]], categories: Sequence[str], title: str,
                 ylabel: str):
    """Bars side by side: one group per category, one coloured bar per named series."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.4))
    positions, width = np.arange(len(categories)), 0.8 / max(1, len(series))
    for k, (name, values) in enumerate(series.items()):
        ax.bar(positions + (k - (len(series) - 1) / 2) * width, list(values), width, label=name,
               color=PALETTE[k % len(PALETTE)])
    ax.set_xticks(positions, list(categories), rotation=30, ha="right")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    return fig


def curves(series: Mapping[str, Sequence[float]], title: str, xlabel: str, ylabel: str,
           log_y: bool = False, x: Sequence[float] | None = None, log_x: bool = False):
    """Line plot of named curves sharing an x axis (``x``, default 1, 2, 3, ...)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, values in series.items():
        xs = list(x) if x is not None else np.arange(1, len(values) + 1)
        ax.plot(xs, values, label=name, lw=1.8, marker="o" if x is not None else None)
    if log_y:
        ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    return fig


def confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], title: str = "Confusion matrix"):
    """A row-normalised confusion matrix (rows: true class, columns: predicted), counts annotated."""
    plt = _plt()
    normalised = matrix / matrix.sum(axis=1, keepdims=True)
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.grid(False)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    for i in ticks:
        for j in ticks:
            if matrix[i, j]:
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if normalised[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    return fig


def distribution(samples: np.ndarray, title: str, xlabel: str, markers: Mapping[str, float] = ()):
    """Histogram of ``samples`` with labelled vertical markers (e.g. a confidence interval)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.hist(samples, bins=40, color=PALETTE[0], alpha=0.8)
    for i, (name, x) in enumerate(dict(markers).items()):
        ax.axvline(x, color=PALETTE[1 + i % (len(PALETTE) - 1)], ls="--", label=f"{name}: {x:.4f}")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    if markers:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def pareto_front(points: Mapping[str, tuple[float, float]]) -> list[str]:
    """Names of the points that no other point beats on both axes (more x and more y are better).

    A point is dominated when another has at least its x and its y and more of one of them.
    The names come back in increasing x.
    """
    front = [name for name, (x, y) in points.items()
             if not any(ox >= x and oy >= y and (ox, oy) != (x, y) for ox, oy in points.values())]
    return sorted(front, key=lambda name: points[name])


def pareto(points: Mapping[str, tuple[float, float]], title: str, xlabel: str, ylabel: str,
           log_x: bool = True):
    """Trade-off chart (e.g. compression ratio vs accuracy) that stays readable with many models.

    Every point gets its own colour and marker and its name in a legend beside the axes, so
    nearby points never overprint each other's names; the Pareto front (:func:`pareto_front`,
    more x and more y being better) is drawn as a dashed line through its points, which are
    starred in the legend. A log x axis gets plain-number ticks (1, 2, 5, 10, 20, ...).
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plt = _plt()
    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for i, (name, (x, y)) in enumerate(points.items()):
        on_front = name in front
        ax.scatter(x, y, s=70 if on_front else 45, marker=MARKERS[(i // len(PALETTE)) % len(MARKERS)],
                   color=PALETTE[i % len(PALETTE)], edgecolors="black" if on_front else "none",
                   zorder=3, label=f"{name} ★" if on_front else name)
    ax.plot([points[name][0] for name in front], [points[name][1] for name in front],
            ls="--", color="grey", lw=1, zorder=2, label="Pareto front (★)")
    if log_x:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def canary_timeline(timeline: Sequence[Mapping], title: str, alpha: float | None = None,
                    min_requests: int | None = None):
    """A canary run over time, one panel per quantity of the rollback rule: the share of requests
    the canary served in each check interval, p95 latency, error ratio and the class-distribution
    test's p-value (log scale, with the level ``alpha``). ``timeline`` rows (from ``canary.run``)
    hold ``t_s``, cumulative ``stable_*`` and ``canary_*`` values and ``rollback``; a dashed line
    marks the rollback decision. With ``min_requests``, the p-value panel shades the checkpoints
    where the canary had served fewer (the rule ignores them)."""
    plt = _plt()
    t = [row["t_s"] for row in timeline]
    served = np.array([[row["stable_requests"], row["canary_requests"]] for row in timeline], float)
    per_interval = np.diff(np.vstack([np.zeros(2), served]), axis=0)
    share = per_interval[:, 1] / np.maximum(per_interval.sum(axis=1), 1)
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.3))
    axes[0].plot(t, share * 100, color=PALETTE[1], marker="o", ms=3, label="canary")
    axes[0].set_ylim(bottom=0)
    for ax, key, scale in ((axes[1], "p95_s", 1e3), (axes[2], "error_ratio", 1.0)):
        for k, side in enumerate(("stable", "canary")):
            ax.plot(t, [row[f"{side}_{key}"] * scale for row in timeline], color=PALETTE[k],
                    marker="o", ms=3, label=side)
    axes[3].plot(t, [max(row["class_p_value"], 1e-300) for row in timeline], color=PALETTE[1],
                 marker="o", ms=3, label="canary vs stable")
    if alpha is not None:
        axes[3].axhline(alpha, color="grey", lw=1, label=f"alpha = {alpha:g}")
    early = [row["t_s"] for row in timeline if min_requests is not None
             and row["canary_requests"] < min_requests]
    if early:
        later = [row["t_s"] for row in timeline if row["t_s"] > early[-1]]
        end = (early[-1] + later[0]) / 2 if later else early[-1]
        axes[3].axvspan(min(t), end, color="grey", alpha=0.15, lw=0,
                        label=f"ignored (< {min_requests} requests)")
    axes[3].set_yscale("log")
    titles = ("% of requests to the canary", "p95 latency (ms)", "error ratio", "class test p-value")
    for ax, label in zip(axes, titles):
        for row in timeline:
            if row.get("rollback"):
                ax.axvline(row["t_s"], color="black", ls="--", lw=1)
        ax.set_title(label)
        ax.set_xlabel("seconds since start")
        if ax is axes[3]:                                   # beside the panel: clear of any p-value curve
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        else:
            ax.legend(fontsize=8)
    fig.suptitle(title + (" (dashed: rollback decision)" if any(r.get("rollback") for r in timeline) else ""))
    fig.tight_layout()
    return fig


def power_curves(curves: Mapping[str, Mapping[int, Sequence[float]]], title: str,
                 alpha: float | None = None, chosen: int | None = None):
    """Detection rate against window size, one line per condition (a shift, or none), log x axis.

    ``curves[name][size] = (rate, low, high)``: the line goes through the rates and a light band
    spans each interval. A grey line marks ``alpha`` (what "no shift" should stay under), a dotted
    line the ``chosen`` window. The legend sits beside the axes so that it never hides a line.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4.0))
    sizes = sorted({size for curve in curves.values() for size in curve})
    for i, (name, curve) in enumerate(curves.items()):
        xs = sorted(curve)
        rate, low, high = (np.array([curve[x][k] for x in xs]) for k in range(3))
        colour = PALETTE[i % len(PALETTE)]
        ax.plot(xs, rate, marker=MARKERS[i % len(MARKERS)], color=colour, lw=1.8, label=name)
        ax.fill_between(xs, low, high, color=colour, alpha=0.12, lw=0)
    if alpha is not None:
        ax.axhline(alpha, color="grey", lw=1, ls="--", label=f"alpha = {alpha:g}")
    if chosen is not None:
        ax.axvline(chosen, color="black", lw=1, ls=":", label=f"chosen window = {chosen}")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.set_xlabel("window size (inputs per test, log scale)")
    ax.set_ylabel("share of windows flagged")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def rate_grid(values: Sequence[Sequence[float]], rows: Sequence[str], columns: Sequence[str],
              title: str, fmt: str = "{:.2f}"):
    """A grid of rates in [0, 1] (e.g. detectors × shifts), each cell coloured and annotated,
    the text dark on light cells and light on dark ones."""
    plt = _plt()
    values = np.asarray(values, dtype=float)
    if values.shape != (len(rows), len(columns)):
        raise ValueError(f"values have shape {values.shape}, labels say {(len(rows), len(columns))}")
    fig, ax = plt.subplots(figsize=(1.1 * len(columns) + 2.5, 0.45 * len(rows) + 1.4))
    ax.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for (r, c), value in np.ndenumerate(values):
        ax.text(c, r, fmt.format(value), ha="center", va="center", fontsize=9,
                color="white" if value > 0.6 else "black")
    ax.set_xticks(range(len(columns)), list(columns), rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), list(rows))
    ax.grid(False)
    ax.set_title(title)
    fig.tight_layout()
    return fig
