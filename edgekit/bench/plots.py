"""Report plots as base64 PNG (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

import base64
import io

from edgekit.bench.schema import Row


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def distribution(device: str, rows: list[Row]) -> str | None:
    """Histogram of every measured artifact's latencies on one device (None: nothing measured)."""
    measured = [row for row in rows if row.latencies_ms]
    if not measured:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(len(measured), 1, figsize=(7, 1.9 * len(measured) + 0.6), squeeze=False,
                             layout="constrained")
    for axis, row in zip(axes[:, 0], measured, strict=True):
        axis.hist(row.latencies_ms, bins=min(60, max(10, len(row.latencies_ms) // 5)), color="#4c72b0")
        axis.axvline(row.latency.p50_ms, color="#dd8452", label=f"p50 {row.latency.p50_ms:.3g} ms")
        axis.axvline(row.latency.p99_ms, color="#c44e52", ls="--", label=f"p99 {row.latency.p99_ms:.3g} ms")
        axis.set_title(f"{row.artifact} ({row.precision})", fontsize=9)
        axis.legend(fontsize=7)
        axis.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("latency (ms)")
    fig.suptitle(f"latency distribution on {device}", fontsize=10)
    return _png(fig)


def timeline(row: Row) -> str | None:
    """Latency against time since the timed runs began (sustained mode)."""
    if not row.timestamps_s or len(row.timestamps_s) != len(row.latencies_ms):
        return None
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(7, 2.4), layout="constrained")
    axis.plot(row.timestamps_s, row.latencies_ms, ".", ms=2, alpha=0.5, color="#4c72b0")
    window = max(1, len(row.latencies_ms) // 50)
    if window > 1:
        import numpy as np

        smooth = np.convolve(row.latencies_ms, np.ones(window) / window, mode="valid")
        axis.plot(row.timestamps_s[window - 1:], smooth, color="#c44e52", label=f"mean of {window}")
        axis.legend(fontsize=7)
    axis.set_xlabel("time (s)")
    axis.set_ylabel("latency (ms)")
    axis.set_title(f"{row.artifact} on {row.device}: latency over time", fontsize=9)
    return _png(fig)
