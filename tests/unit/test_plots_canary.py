"""The canary timeline of notebook 13c: one panel per signal of the rollback rule, the decision marked."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from helpers import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def timeline(rollback_at=None):
    return [{"t_s": 0.5 * k, "stable_requests": 100 * k - 10 * min(k, 2), "canary_requests": 10 * min(k, 2),
             "stable_p95_s": 0.005, "canary_p95_s": 0.006 + 0.001 * k, "stable_error_ratio": 0.0,
             "canary_error_ratio": 0.01 * k, "class_p_value": 10.0 ** -k, "rollback": k == rollback_at}
            for k in range(1, 6)]


def test_each_signal_has_its_panel_with_both_versions_and_the_decision():
    fig = plots.canary_timeline(timeline(rollback_at=3), "Canary of v3", alpha=1e-3)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["% of requests to the canary", "p95 latency (ms)",
                                               "error ratio", "class test p-value"]
    for ax in axes[1:3]:
        assert [line.get_label() for line in ax.get_lines()[:2]] == ["stable", "canary"]
    p95 = axes[1].get_lines()[1].get_ydata()
    assert list(p95) == pytest.approx([7.0, 8.0, 9.0, 10.0, 11.0])                  # seconds shown as ms
    assert list(axes[0].get_lines()[0].get_ydata()) == pytest.approx([10, 10, 0, 0, 0])   # per interval
    assert axes[3].get_yscale() == "log"
    assert any(line.get_label() == "alpha = 0.001" for line in axes[3].get_lines())
    for ax in axes:                                                 # the decision, dashed, at t = 1.5 s
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert len(dashed) == 1 and list(dashed[0].get_xdata()) == [1.5, 1.5]
    assert "rollback" in fig._suptitle.get_text()


def test_no_rollback_no_line():
    fig = plots.canary_timeline(timeline(), "Canary of v2")
    assert not any(line.get_linestyle() == "--" for ax in fig.axes for line in ax.get_lines())
    assert "rollback" not in fig._suptitle.get_text()


def test_checkpoints_before_min_requests_are_shaded_in_the_p_value_panel():
    fig = plots.canary_timeline(timeline(), "Canary of v2", alpha=1e-3, min_requests=20)
    spans = [patch for patch in fig.axes[3].patches if "ignored" in patch.get_label()]
    assert len(spans) == 1                          # canary_requests 10 at t = 0.5 only: up to 0.75 s
    box = spans[0].get_window_extent().transformed(fig.axes[3].transData.inverted())
    assert (box.x0, box.x1) == pytest.approx((0.5, 0.75))
    assert not any(fig.axes[k].patches for k in range(3))
    plain = plots.canary_timeline(timeline(), "Canary of v2", alpha=1e-3)
    assert not plain.axes[3].patches
