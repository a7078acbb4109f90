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
