import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from helpers import plots  # noqa: E402


def test_every_plot_returns_a_titled_figure():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 5)
    figures = [
        plots.image_grid(rng.random((15, 28, 28)), labels, ["a", "b", "c"], per_class=2),
        plots.bar({"a": 1.0, "b": 2.0}, "bars", "count"),
        plots.curves({"x": [3, 2, 1]}, "curves", "step", "loss", log_y=True),
        plots.curves({"x": [3, 2, 1]}, "curves", "n", "loss", x=[1, 10, 100], log_x=True),
        plots.labelled_scatter({"a": (1.0, 0.9), "b": (4.0, 0.91)}, "scatter", "KB", "acc"),
        plots.confusion_matrix(np.array([[5, 1], [2, 4]]), ["a", "b"]),
        plots.distribution(rng.random(100), "dist", "value", {"low": 0.1}),
    ]
    for figure in figures:
        title = figure._suptitle.get_text() if figure._suptitle else figure.axes[0].get_title()
        assert title
