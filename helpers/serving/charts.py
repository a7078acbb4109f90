"""Load-test charts with one colour per server and one line style per percentile, in every panel.

Comparing servers across several panels (throughput, then latency) is only readable when a
server keeps its colour everywhere; within the latency panel, p50 and p99 of the same server
share its colour and differ by line style (and marker), so a colour always means a server and a
style always means a percentile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: Colours assigned to servers in the order they are given (matplotlib's tab10).
SERVER_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
#: Colours of the vertical event lines in :func:`timeline_panels` (none of them a series colour).
EVENT_COLOURS = ("black", "tab:purple", "tab:brown", "tab:olive", "tab:cyan", "tab:pink", "tab:grey")
#: Line style and marker of each latency percentile.
PERCENTILE_STYLES = {"p50": ("-", "o"), "p90": ("-.", "^"), "p99": ("--", "s")}


def server_colours(servers: Sequence[str]) -> dict[str, str]:
    """The colour of each server, by its position in ``servers``."""
    if len(servers) > len(SERVER_COLOURS):
        raise ValueError(f"At most {len(SERVER_COLOURS)} servers per chart, got {len(servers)}")
    return dict(zip(servers, SERVER_COLOURS))


def load_curves(results: Mapping[str, Mapping[str, Sequence[float]]], x: Sequence[float], title: str,
                xlabel: str = "concurrent clients", percentiles: Sequence[str] = ("p50", "p99")):
    """Throughput (left) and latency percentiles (right) of several servers against ``x``.

    ``results[server]`` holds ``"rps"`` and ``"<percentile>_ms"`` (e.g. ``"p50_ms"``) lists, one
    value per ``x``. Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    colours = server_colours(list(results))
    fig, (throughput, latency) = plt.subplots(1, 2, figsize=(11, 3.8))
    for server, values in results.items():
        throughput.plot(x, values["rps"], color=colours[server], marker="o", lw=1.8, label=server)
        for percentile in percentiles:
            style, marker = PERCENTILE_STYLES[percentile]
            latency.plot(x, values[f"{percentile}_ms"], color=colours[server], ls=style, marker=marker,
                         lw=1.8, label=f"{server}, {percentile}")
    throughput.set(title=f"{title}: throughput", xlabel=xlabel, ylabel="requests per second")
    latency.set(title=f"{title}: latency", xlabel=xlabel, ylabel="ms")
    for axis in (throughput, latency):
        axis.legend(fontsize=8)
    fig.tight_layout()
    return fig


def timeline_panels(panels: Sequence[Mapping], events: Mapping[str, float] = (), spans: Sequence = (),
                    title: str = "", columns: int = 2):
    """Time series from Prometheus (frames indexed by seconds), one panel each, sharing the x axis.

    Each panel is ``{"title", "frame", "ylabel"}`` plus optional ``"threshold"`` (a dashed
    horizontal line with its value in the legend), ``"logy"``, ``"ymin"`` (the bottom of the y
    axis, e.g. 0 for a ratio) and ``"stacked"`` (an area chart of shares). ``events``
    (``label -> seconds``) draw a vertical line in every panel, one colour each, labelled in a
    legend under the figure; ``spans`` (``(start, end, label)``) a shaded interval (e.g. while an
    alert fired). Returns the figure.
    """
    import matplotlib.pyplot as plt

    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6.2 * columns, 3.2 * rows), sharex=True,
                                squeeze=False)
    for axis, panel in zip(axes.flat, panels):
        frame = panel["frame"]
        if panel.get("stacked"):
            axis.stackplot(frame.index, frame.fillna(0).T.values, labels=[str(c) for c in frame.columns])
        else:
            for column in frame.columns:
                axis.plot(frame.index, frame[column], label=str(column))
        if panel.get("threshold") is not None:
            axis.axhline(panel["threshold"], color="black", linestyle="--", linewidth=1,
                         label=f"threshold {panel['threshold']:g}")
        if panel.get("logy"):
            axis.set_yscale("log")
        if panel.get("ymin") is not None:
            axis.set_ylim(bottom=panel["ymin"])
        for start, end, label in spans:
            axis.axvspan(start, end, color="tab:red", alpha=0.12, label=label)
        for number, seconds in enumerate(dict(events).values()):
            axis.axvline(seconds, color=EVENT_COLOURS[number % len(EVENT_COLOURS)], linestyle=":",
                         linewidth=1.5)
        axis.set_title(panel["title"], fontsize=10)
        axis.set_ylabel(panel.get("ylabel", ""))
        axis.grid(alpha=0.3)
        handles, labels = axis.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        if unique:
            axis.legend(unique.values(), unique.keys(), fontsize=7, loc="upper left",
                        ncol=2 if len(unique) > 5 else 1)
    for axis in axes.flat[len(panels):]:
        axis.set_visible(False)
    if events:
        from matplotlib.lines import Line2D

        markers = [Line2D([], [], color=EVENT_COLOURS[n % len(EVENT_COLOURS)], linestyle=":", linewidth=1.5)
                   for n in range(len(events))]
        figure.legend(markers, [f"{label} ({seconds:.1f} s)" for label, seconds in dict(events).items()],
                      loc="lower center", ncol=min(len(events), 4), fontsize=8, frameon=False)
    for column in range(columns):                  # the lowest visible panel of each column
        shown = [axis for axis in axes[:, column] if axis.get_visible()]
        if shown:
            shown[-1].tick_params(labelbottom=True)
            shown[-1].set_xlabel("seconds since the load started")
    if title:
        figure.suptitle(title)
    legend_rows = -(-len(dict(events)) // 4)
    figure.tight_layout(rect=(0, 0.015 + 0.025 * legend_rows if legend_rows else 0, 1, 1))
    return figure
