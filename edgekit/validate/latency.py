"""One latency schema for every backend and device, and the statistics that fill it."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict


class LatencySummary(BaseModel):
    """Latency of one artifact on one machine, in milliseconds, from measured runs only."""

    model_config = ConfigDict(extra="forbid")

    p50_ms: Optional[float] = None  # None only where a device tool does not print it
    p90_ms: Optional[float] = None
    p99_ms: Optional[float] = None
    mean_ms: float
    std_ms: Optional[float] = None  # None only where a device tool does not print it
    min_ms: float
    max_ms: float
    runs: int
    warmup_runs: Optional[int] = None
    threads: Optional[int] = None
    cold_start_ms: Optional[float] = None
    peak_rss_mb: Optional[float] = None


def summarize_latencies(
    samples_ms: Sequence[float],
    *,
    warmup_runs: int,
    threads: int | None = None,
    cold_start_ms: float | None = None,
    peak_rss_mb: float | None = None,
) -> LatencySummary:
    """Percentiles (linear interpolation), mean and population std of the timed runs."""
    data = np.asarray(samples_ms, dtype=np.float64)
    if data.size == 0:
        raise ValueError("no timed runs to summarize")
    p50, p90, p99 = np.percentile(data, [50, 90, 99])
    return LatencySummary(
        p50_ms=round(float(p50), 4),
        p90_ms=round(float(p90), 4),
        p99_ms=round(float(p99), 4),
        mean_ms=round(float(data.mean()), 4),
        std_ms=round(float(data.std()), 4),
        min_ms=round(float(data.min()), 4),
        max_ms=round(float(data.max()), 4),
        runs=int(data.size),
        warmup_runs=warmup_runs,
        threads=threads,
        cold_start_ms=None if cold_start_ms is None else round(cold_start_ms, 4),
        peak_rss_mb=peak_rss_mb,
    )
