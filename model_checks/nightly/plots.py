"""Trend plots as PNG bytes. matplotlib (Agg, no display) is imported here only, when a report is drawn."""

from __future__ import annotations

import io

from model_checks.nightly.document import Point

LATENCY_LINES = ("p50", "p90", "p99")


def trend_png(title: str, points: tuple[Point, ...]) -> bytes:
    """Latency percentiles (left) and throughput (right) per device over the stored runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, thr) = plt.subplots(1, 2, figsize=(10, 3.4), constrained_layout=True)
    whens = sorted({p.when for p in points})
    x_of = {w: i for i, w in enumerate(whens)}
    for check, axis, keys in (("latency", lat, LATENCY_LINES), ("throughput", thr, ("throughput_per_s",))):
        for device in sorted({p.device for p in points if p.check == check}):
            series = sorted((p for p in points if p.check == check and p.device == device), key=lambda p: p.when)
            for key in keys:
                xs = [x_of[p.when] for p in series if key in p.values]
                ys = [p.values[key] for p in series if key in p.values]
                if xs:
                    axis.plot(xs, ys, marker="o", label=f"{device} {key.removesuffix('_per_s')}")
        axis.set_xlabel("stored run")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize="small")
    lat.set_ylabel("latency (ms)")
    lat.set_title(f"{title}: latency")
    thr.set_ylabel("items/s")
    thr.set_title(f"{title}: throughput")
    ticks = range(len(whens))
    for axis in (lat, thr):
        axis.set_xticks(list(ticks), [w[5:16].replace("T", " ") for w in whens], rotation=30, fontsize="x-small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()
