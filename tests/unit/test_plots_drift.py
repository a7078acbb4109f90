"""Notebook 13b's figures: power curves against window size, and a grid of detection rates."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


CURVES = {"no shift": {10: (0.05, 0.02, 0.1), 100: (0.04, 0.01, 0.09), 1000: (0.06, 0.03, 0.1)},
          "brightness": {10: (0.3, 0.2, 0.4), 100: (0.9, 0.8, 0.95), 1000: (1.0, 0.97, 1.0)}}


def test_power_curves_draw_each_condition_on_a_log_axis_with_alpha_and_the_chosen_window():
    fig = plots.power_curves(CURVES, "power", alpha=0.05, chosen=100)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["brightness"].get_ydata(), [0.3, 0.9, 1.0])
    np.testing.assert_allclose(lines["no shift"].get_xdata(), [10, 100, 1000])
    assert "alpha = 0.05" in lines and "chosen window = 100" in lines
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "100", "1000"]
    assert len(ax.collections) == 2                               # one interval band per condition
    legend = ax.get_legend()
    assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1   # beside, not on, the lines


def test_rate_grid_annotates_every_cell_and_checks_its_shape():
    values = [[0.05, 1.0, 0.5], [0.0, 0.25, 0.75]]
    fig = plots.rate_grid(values, ["KS", "MMD"], ["none", "brightness", "ood"], "rates")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["0.05", "1.00", "0.50", "0.00", "0.25", "0.75"]
    colours = [t.get_color() for t in ax.texts]
    assert colours[1] == "white" and colours[0] == "black"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["KS", "MMD"]
    with pytest.raises(ValueError, match="shape"):
        plots.rate_grid(values, ["KS"], ["none", "brightness", "ood"], "rates")
