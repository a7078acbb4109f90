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
