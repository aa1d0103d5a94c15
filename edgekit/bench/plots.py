"""Bench plots as PNG data URIs (edgekit.report.plots: matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

from edgekit.bench.schema import Row
from edgekit.report.plots import figure_data_uri, pyplot


def distribution(device: str, rows: list[Row]) -> str | None:
    """Latency per artifact on one device on ONE shared axis, so INT8 vs FP32 reads at a glance:
    a box plot of every run (harness), or for tools that print only statistics a min-max line
    with its p50/mean marked (benchmark_model, trtexec). None when nothing was measured."""
    measured = [row for row in rows if row.latency is not None]
    if not measured:
        return None
    plt = pyplot()
    fig, axis = plt.subplots(figsize=(8, 0.55 * len(measured) + 1.3), layout="constrained")
    colors = {"int8": "#55a868", "fp32": "#4c72b0", "fp16": "#8172b2"}
    for y, row in enumerate(measured):
        color = colors.get(row.precision, "#937860")
        lat = row.latency
        if row.latencies_ms:
            axis.boxplot([row.latencies_ms], positions=[y], vert=False, widths=0.55,
                         patch_artist=True, showfliers=False, whis=(1, 99),
                         boxprops={"facecolor": color, "alpha": 0.6},
                         medianprops={"color": "black"}, flierprops={"markersize": 2})
        else:
            axis.plot([lat.min_ms, lat.max_ms], [y, y], color=color, lw=2)
            center = lat.p50_ms if lat.p50_ms is not None else lat.mean_ms
            axis.plot([center], [y], "o", color="black", ms=5)
        center = lat.p50_ms if lat.p50_ms is not None else lat.mean_ms
        label = "p50" if lat.p50_ms is not None else "mean"
        axis.annotate(f"{label} {center:.3g} ms", (lat.p99_ms or lat.max_ms, y), xytext=(6, 0),
                      textcoords="offset points", va="center", fontsize=7)
    axis.set_yticks(range(len(measured)),
                    [f"{row.artifact}\n{row.precision} · {row.tool or '?'}" for row in measured],
                    fontsize=8)
    axis.invert_yaxis()
    right = max((row.latency.p99_ms if row.latencies_ms else None) or row.latency.max_ms
                for row in measured)
    axis.set_xlim(0, right * 1.3)
    axis.set_xlabel("latency (ms); boxes: every run (whiskers p1-p99, outliers in the tables), "
                    "lines: tool min-max", fontsize=8)
    axis.tick_params(labelsize=8)
    axis.grid(axis="x", alpha=0.3)
    axis.set_title(f"latency per artifact on {device}", fontsize=10)
    return figure_data_uri(fig)


def timeline(row: Row) -> str | None:
    """Latency against time since the timed runs began (sustained mode)."""
    if not row.timestamps_s or len(row.timestamps_s) != len(row.latencies_ms):
        return None
    import numpy as np

    plt = pyplot()
    fig, axis = plt.subplots(figsize=(7, 2.4), layout="constrained")
    axis.plot(row.timestamps_s, row.latencies_ms, ".", ms=2, alpha=0.5, color="#4c72b0")
    window = max(1, len(row.latencies_ms) // 50)
    if window > 1:
        smooth = np.convolve(row.latencies_ms, np.ones(window) / window, mode="valid")
        axis.plot(row.timestamps_s[window - 1:], smooth, color="#c44e52", label=f"mean of {window}")
        axis.legend(fontsize=7)
    top = float(np.percentile(row.latencies_ms, 99.5)) * 1.5
    above = sum(1 for value in row.latencies_ms if value > top)
    axis.set_ylim(0, top)
    axis.set_xlabel("time (s)")
    axis.set_ylabel("latency (ms)")
    clipped = f" ({above} runs above {top:.3g} ms not shown)" if above else ""
    axis.set_title(f"{row.artifact} on {row.device}: latency over time{clipped}", fontsize=9)
    return figure_data_uri(fig)


def speedup_bars(ups) -> str | None:
    """One horizontal bar per (device, INT8 artifact): FP32 latency / INT8 latency, 1x marked."""
    if not ups:
        return None
    plt = pyplot()
    labels = [f"{u.device}: {u.int8_artifact}" for u in ups]
    values = [u.speedup for u in ups]
    fig, axis = plt.subplots(figsize=(7, 0.45 * len(ups) + 1.0), layout="constrained")
    colors = ["#55a868" if v >= 1 else "#c44e52" for v in values]
    bars = axis.barh(range(len(ups)), values, color=colors)
    axis.set_yticks(range(len(ups)), labels, fontsize=8)
    axis.invert_yaxis()
    axis.axvline(1.0, color="#333", lw=1, ls="--")
    for bar, value in zip(bars, values, strict=True):
        axis.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:.2f}x",
                  va="center", fontsize=8)
    axis.set_xlim(0, max(values + [1.0]) * 1.18)
    axis.set_xlabel("INT8 speed-up vs FP32 (higher is faster)")
    axis.tick_params(labelsize=8)
    return figure_data_uri(fig)
