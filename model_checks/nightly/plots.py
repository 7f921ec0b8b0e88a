"""The trend plot of one artifact over the stored runs: latency, throughput and speedup per device, and served
p50/p99 and achieved rate over HTTP (test_serving), against time, with this run's limit drawn, the earlier
runs' range as the baseline band, and flagged runs marked. Axes start at zero, so run-to-run noise looks as
small as it is. matplotlib is imported here only."""

from __future__ import annotations

import io
from datetime import datetime, timezone

from model_checks.core.requires import require
from model_checks.nightly.document import Point, Section
from model_checks.safety.text import mpl_text

LATENCY_LINES = ("p50", "p90", "p99")
# (title, check, lines, y label): a check may fill several panels (serving: its latency and its rate)
PANELS = (
    ("latency", "latency", LATENCY_LINES, "latency ({unit})"),
    ("throughput", "throughput", ("throughput_per_s",), "items/s"),
    ("speedup", "speedup", ("speedup",), "x over reference"),
    ("served latency", "serving", ("p50", "p99"), "latency over HTTP (ms)"),
    ("served rate", "serving", ("achieved_rate_per_s",), "requests/s answered"),
)


def _when(text: str) -> datetime:
    """A point's time, in UTC without a zone (matplotlib cannot mix aware and naive ones); the epoch when unreadable
    (stored runs are checked on reading, this run's own time is ISO 8601)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return datetime(1970, 1, 1)
    return when.astimezone(timezone.utc).replace(tzinfo=None) if when.tzinfo else when


def _latency_scale(points: tuple[Point, ...]) -> tuple[float, str]:
    """(factor from ms, unit) so that latencies read in µs when they are under a millisecond."""
    top = max(
        (v for p in points if p.check == "latency" for k, v in p.values.items() if k in LATENCY_LINES), default=1.0
    )
    return (1000.0, "µs") if top < 1 else (1.0, "ms")


def panels(points: tuple[Point, ...]) -> list[tuple[str, str, tuple[str, ...], str]]:
    """The PANELS that the points fill, in order."""
    return [
        panel for panel in PANELS if any(p.check == panel[1] and any(k in p.values for k in panel[2]) for p in points)
    ]


def trend_png(section: Section) -> bytes:
    """The section's trend as a PNG (needs matplotlib: `model-checks[report]`)."""
    matplotlib = require("matplotlib", "report", "the nightly report's plots")
    matplotlib.use("Agg")
    matplotlib.rcParams["text.usetex"] = False  # no LaTeX run on text from stored runs, whatever the user's rc says
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    points = section.trend
    shown = panels(points)
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.4), constrained_layout=True, squeeze=False)
    factor, unit = _latency_scale(points)
    for axis, (title, check, keys, ylabel) in zip(axes[0], shown):
        scale = factor if check == "latency" else 1.0
        for device in sorted({p.device for p in points if p.check == check}):
            series = sorted((p for p in points if p.check == check and p.device == device), key=lambda p: p.when)
            for key in keys:
                xy = [(_when(p.when), p.values[key] * scale) for p in series if key in p.values]
                if not xy:
                    continue
                xs, ys = zip(*xy)
                (line,) = axis.plot(xs, ys, marker="o", label=mpl_text(f"{device} {key.removesuffix('_per_s')}"))
                if len(ys) > 1:  # the earlier runs' range: where this run is expected to land
                    axis.axhspan(min(ys[:-1]), max(ys[:-1]), color=line.get_color(), alpha=0.12)
                if (check, device) in section.flagged:
                    axis.plot([xs[-1]], [ys[-1]], marker="X", markersize=12, color="red", linestyle="none")
                limit = section.limits.get((check, device), {}).get(
                    f"limit_{key}_ms" if key in LATENCY_LINES else f"limit_{key}"
                )
                if limit is not None:
                    axis.axhline(
                        limit * scale,
                        color=line.get_color(),
                        linestyle="--",
                        linewidth=1,
                        label=mpl_text(f"{device} {key.removesuffix('_per_s')} limit"),
                    )
        axis.set_ylim(bottom=0)
        axis.set_ylabel(ylabel.format(unit=unit))
        axis.set_title(mpl_text(f"{section.artifact}: {title}"), fontsize="medium")
        axis.grid(alpha=0.3)
        axis.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
        axis.tick_params(axis="x", labelrotation=30, labelsize="x-small")
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize="x-small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()
