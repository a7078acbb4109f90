"""What each figure draws: its marks and their data, scales, labels, legends, readable annotations."""

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from helpers import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _overlaps(texts) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose boxes on the canvas overlap."""
    texts = [t for t in texts if t.get_visible() and t.get_text()]
    if not texts:
        return []
    figure = texts[0].figure
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]


def _tick_texts(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels()]


def test_bar_draws_one_bar_per_value_with_formatted_labels():
    values = {"float32": 412.3, "float16": 206.9, "int8": 103.4}
    figure = plots.bar(values, "Size per mode", "KB", fmt="{:.1f}")
    ax = figure.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert [b.get_height() for b in bars] == pytest.approx(list(values.values()))
    assert _tick_texts(ax.xaxis) == list(values)
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["412.3", "206.9", "103.4"]
    assert ax.get_title() == "Size per mode" and ax.get_ylabel() == "KB"
    assert not _overlaps(ax.texts)
    assert not _overlaps(ax.get_xticklabels())


def test_curves_draw_each_series_on_its_x_with_a_legend_and_scales():
    figure = plots.curves({"train": [3.0, 2.0, 1.0], "val": [3.5, 2.5, 2.0]}, "Loss", "epoch",
                          "loss", log_y=True)
    ax = figure.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 2
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3])        # epochs count from 1
    np.testing.assert_array_equal(lines[1].get_ydata(), [3.5, 2.5, 2.0])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "val"]
    assert (ax.get_yscale(), ax.get_xscale()) == ("log", "linear")
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("epoch", "loss", "Loss")

    figure = plots.curves({"p50": [5, 6, 9]}, "Latency", "clients", "ms", x=[1, 10, 100], log_x=True)
    ax = figure.axes[0]
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [1, 10, 100])
    assert line.get_marker() == "o"                                        # measured points marked
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "linear")


def test_confusion_matrix_normalises_rows_annotates_counts_and_has_a_colorbar():
    matrix = np.array([[5, 1, 0], [2, 4, 0], [0, 3, 9]])
    figure = plots.confusion_matrix(matrix, ["a", "b", "c"], title="CM")
    ax, colorbar = figure.axes                                             # the colorbar's axes
    image = ax.get_images()[0]
    np.testing.assert_allclose(image.get_array(), matrix / matrix.sum(axis=1, keepdims=True))
    assert image.get_clim() == (0, 1)
    texts = {(t.get_position(), t.get_text()) for t in ax.texts}
    assert texts == {((j, i), str(matrix[i, j])) for i in range(3) for j in range(3) if matrix[i, j]}
    assert _tick_texts(ax.xaxis) == ["a", "b", "c"] and _tick_texts(ax.yaxis) == ["a", "b", "c"]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("predicted class", "true class", "CM")
    assert colorbar.get_ylabel() == "share of the true class"


def test_confusion_matrix_counts_stay_readable_with_ten_classes():
    rng = np.random.default_rng(0)
    matrix = rng.integers(1, 40, (10, 10)) + np.diag(np.full(10, 950))
    figure = plots.confusion_matrix(matrix, [f"class {i}" for i in range(10)])
    assert len(figure.axes[0].texts) == 100
    assert not _overlaps(figure.axes[0].texts)


def test_distribution_draws_every_sample_and_labelled_markers():
    samples = np.random.default_rng(0).normal(size=500)
    figure = plots.distribution(samples, "Bootstrap", "accuracy", {"low": -1.5, "high": 1.25})
    ax = figure.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 40 and sum(b.get_height() for b in bars) == 500
    markers = ax.get_lines()
    assert [line.get_xdata()[0] for line in markers] == [-1.5, 1.25]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["low: -1.5000", "high: 1.2500"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("accuracy", "count")
    assert plots.distribution(samples, "No markers", "x").axes[0].get_legend() is None


def test_image_grid_shows_per_class_images_of_the_right_class():
    rng = np.random.default_rng(0)
    images = rng.random((15, 28, 28))
    labels = np.repeat(np.arange(3), 5)
    figure = plots.image_grid(images, labels, ["a", "b", "c"], per_class=2)
    assert len(figure.axes) == 6 and figure.get_suptitle() == "2 random images per class"
    grid = np.array(figure.axes).reshape(3, 2)
    for row, name in enumerate(["a", "b", "c"]):
        assert grid[row, 0].get_ylabel() == name
        shown = [ax.get_images()[0].get_array() for ax in grid[row]]
        own = images[labels == row]
        for image in shown:                                             # an image of this class
            assert any(np.array_equal(image, candidate) for candidate in own)
        assert not np.array_equal(shown[0], shown[1])                   # drawn without replacement
