"""The size-vs-accuracy chart of notebook 07: Pareto front, legend instead of labels, readable ticks."""

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402

from helpers import plots  # noqa: E402

# Notebook 07's crowded corner: several models of similar size and accuracy.
POINTS = {"float32": (1.0, 0.9109), "04 int8": (4.07, 0.9117), "04 dynamic": (4.0, 0.9112),
          "05 QAT int8": (4.5, 0.9197), "06 pruned 80% int8": (10.7, 0.9142),
          "07 pruned 90% int8": (17.4, 0.9050), "07 PCQAT 8 clusters": (25.6, 0.9055),
          "07 PCQAT 16 clusters": (23.2, 0.9057), "07 clustered float32": (15.3, 0.9054)}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_front_keeps_only_points_nothing_beats_on_both_axes():
    assert plots.pareto_front(POINTS) == ["05 QAT int8", "06 pruned 80% int8", "07 PCQAT 16 clusters",
                                          "07 PCQAT 8 clusters"]
    assert plots.pareto_front({"a": (1, 1), "b": (2, 2), "c": (3, 0)}) == ["b", "c"]
    assert plots.pareto_front({"a": (1, 1), "same": (1, 1)}) == ["a", "same"]     # ties both stay
    assert plots.pareto_front({"only": (5, 0.5)}) == ["only"]


def test_chart_draws_every_point_once_and_names_each_in_the_legend():
    figure = plots.pareto(POINTS, "Size vs accuracy", "compression ratio", "test accuracy")
    ax = figure.axes[0]
    offsets = [tuple(c.get_offsets()[0]) for c in ax.collections if isinstance(c, PathCollection)]
    np.testing.assert_allclose(offsets, list(POINTS.values()))
    styles = {(tuple(c.get_facecolor()[0]), c.get_paths()[0].vertices.tobytes())
              for c in ax.collections if isinstance(c, PathCollection)}
    assert len(styles) == len(POINTS)                     # colour and marker tell every point apart
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    front = plots.pareto_front(POINTS)
    assert legend[:-1] == [f"{n} ★" if n in front else n for n in POINTS]
    assert legend[-1].startswith("Pareto front")
    assert not ax.texts                                   # no labels on the axes to overprint
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_xdata(), [POINTS[n][0] for n in front])
    np.testing.assert_allclose(line.get_ydata(), [POINTS[n][1] for n in front])
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == (
        "compression ratio", "test accuracy", "Size vs accuracy")


def test_legend_sits_beside_the_axes_and_its_names_do_not_overlap():
    figure = plots.pareto(POINTS, "t", "x", "y")
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    ax = figure.axes[0]
    legend_box = ax.get_legend().get_window_extent(renderer)
    assert legend_box.x0 >= ax.get_window_extent(renderer).x1           # outside the plot area
    boxes = [t.get_window_extent(renderer) for t in ax.get_legend().get_texts()]
    assert not [pair for pair in itertools.combinations(boxes, 2) if pair[0].overlaps(pair[1])]
    assert legend_box.x1 <= figure.bbox.x1 + 1                           # and inside the figure


def test_log_axis_ticks_are_plain_numbers():
    figure = plots.pareto(POINTS, "t", "x", "y", log_x=True)
    ax = figure.axes[0]
    figure.canvas.draw()
    low, high = ax.get_xlim()
    shown = [t.get_text() for t in ax.get_xticklabels()
             if t.get_text() and low <= t.get_position()[0] <= high]
    assert ax.get_xscale() == "log"
    assert {"1", "2", "5", "10", "20"} <= set(shown)
    assert not [text for text in shown if "$" in text or "^" in text]   # no 10^1 mathtext
    assert [float(text) for text in shown] == sorted(float(text) for text in shown)
    assert not [t for t in ax.xaxis.get_minorticklabels() if t.get_text()]
    linear = plots.pareto(POINTS, "t", "x", "y", log_x=False).axes[0]
    assert linear.get_xscale() == "linear"


def test_grouped_bars_draws_one_bar_per_series_and_category():
    from helpers import plots

    figure = plots.grouped_bars({"T = 1": [0.7, 0.2, 0.1], "T = 4": [0.4, 0.35, 0.25]},
                                ["a", "b", "c"], "softened", "probability")
    ax = figure.axes[0]
    heights = sorted(round(p.get_height(), 2) for p in ax.patches)
    assert heights == sorted([0.7, 0.2, 0.1, 0.4, 0.35, 0.25])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["T = 1", "T = 4"]
    lefts = {round(p.get_x(), 3) for p in ax.patches}
    assert len(lefts) == 6                                  # side by side, not on top of each other
