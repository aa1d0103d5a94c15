"""TFLite's `benchmark_model` tool: its command line, and its text output parsed into edgekit's schema.

What the tool prints, and so what this module can report (times in microseconds, memory in MB):

* per phase (warm-up, then timed runs) one statistics line: `count= first= curr= min= max= avg=
  std=`, newer builds add `p5= median= p95=`; with a single distinct value it prints
  `count=N curr=X` (+ `(all same)`). There is never a p90 or p99: those stay None, never estimated.
* `Inference timings in us: Init: .., First inference: .., Warmup (avg): .., Inference (avg): ..`
* memory: `Peak memory footprint (MB): init= overall=` (TF <= 2.4) or `Memory footprint delta
  from the start of the tool (MB): init= overall=`, and with `--report_peak_memory_footprint=true`
  `Overall peak memory footprint (MB) via periodic monitoring: X` (the only absolute peak).
* with `--enable_op_profiling=true`: tab-separated tables `Top by Computation Time` and `Summary
  by node type`, first for initialization, then for the regular runs (the ones kept here).

Lines may carry a log prefix (`INFO: `, or logcat's `I tflite  : `); it is stripped.
"""

from __future__ import annotations

import math
import re
from typing import Optional, Sequence

from pydantic import BaseModel, ConfigDict

from edgekit.errors import DeviceToolError, UsageError

_PREFIX = re.compile(
    r"^(?:\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+)?(?:[VDIWEF] [\w.-]+\s*: ?)?(?:(?:INFO|VERBOSE|WARNING|ERROR): )?"
)
_TIMINGS = re.compile(
    r"Inference timings in us: Init: (?P<init>[^,]+), First inference: (?P<first>[^,]+), "
    r"Warmup \(avg\): (?P<warmup>[^,]+), Inference \(avg\): (?P<inference>\S+)"
)
_FOOTPRINT = re.compile(
    r"(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\): init=(\S+) overall=(\S+)"
)
_PEAK = re.compile(r"Overall peak memory footprint \(MB\) via periodic monitoring: (\S+)")
_THREADS = re.compile(r"^(?:Num threads|#threads used for CPU inference): \[(-?\d+)\]")
REGULAR_RUNS = "Operator-wise Profiling Info for Regular Benchmark Runs"
TOP_TABLE = "Top by Computation Time"
NODE_TYPE_TABLE = "Summary by node type"


class PhaseStats(BaseModel):
    """One statistics line of the tool (microseconds); fields the build does not print are None."""

    model_config = ConfigDict(extra="forbid")

    count: int
    first_us: Optional[float] = None
    curr_us: Optional[float] = None
    min_us: float
    max_us: float
    avg_us: float
    std_us: float
    p5_us: Optional[float] = None
    median_us: Optional[float] = None
    p95_us: Optional[float] = None


class OpTime(BaseModel):
    """One row of the per-op profile (`Top by Computation Time`)."""

    model_config = ConfigDict(extra="forbid")

    node_type: str
    name: str
    avg_ms: float
    percent: Optional[float] = None
    first_ms: Optional[float] = None
    times_called: Optional[int] = None


class NodeTypeTime(BaseModel):
    """One row of `Summary by node type`."""

    model_config = ConfigDict(extra="forbid")

    node_type: str
    count: Optional[int] = None
    avg_ms: float
    percent: Optional[float] = None
    times_called: Optional[int] = None


class BenchmarkModelResult(BaseModel):
    """Everything the tool reported about one run, in its own units."""

    model_config = ConfigDict(extra="forbid")

    threads: Optional[int] = None
    init_us: float
    first_inference_us: float
    warmup_avg_us: Optional[float] = None
    inference_avg_us: float
    warmup: Optional[PhaseStats] = None
    inference: Optional[PhaseStats] = None
    init_footprint_mb: Optional[float] = None
    overall_footprint_mb: Optional[float] = None
    peak_memory_mb: Optional[float] = None
    top_ops: list[OpTime] = []
    node_types: list[NodeTypeTime] = []

    def latency_fields(self, threads: Optional[int] = None, warmup_runs: Optional[int] = None) -> dict:
        """LatencySummary fields in ms. p50 is the tool's median (newer builds), p90/p99 are None.

        cold_start_ms = Init + First inference; peak_rss_mb = the periodic-monitoring peak (the
        footprint deltas are not absolute RSS). `threads`/`warmup_runs` fill in what the output lacks.
        """
        stats = self.inference
        if stats is None:
            raise DeviceToolError("benchmark_model printed no statistics line for the timed runs")
        return {
            "p50_ms": _ms(stats.median_us),
            "p90_ms": None,
            "p99_ms": None,
            "mean_ms": _ms(stats.avg_us),
            "std_ms": _ms(stats.std_us),
            "min_ms": _ms(stats.min_us),
            "max_ms": _ms(stats.max_us),
            "runs": stats.count,
            "warmup_runs": self.warmup.count if self.warmup is not None else warmup_runs,
            "threads": self.threads if self.threads and self.threads > 0 else threads,
            "cold_start_ms": _ms(self.init_us + self.first_inference_us),
            "peak_rss_mb": self.peak_memory_mb,
        }

    def to_latency_summary(self, threads: Optional[int] = None, warmup_runs: Optional[int] = None):
        """edgekit's LatencySummary (needs a schema whose p50/p90/p99 may be None)."""
        from edgekit.validate.latency import LatencySummary

        return LatencySummary(**self.latency_fields(threads, warmup_runs))


def _ms(us: Optional[float]) -> Optional[float]:
    return None if us is None else round(us / 1000.0, 4)


def _number(text: str, what: str) -> float:
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise DeviceToolError(f"benchmark_model output: {what} is not a number: {text.strip()[:40]!r}") from None
    if not math.isfinite(value):
        raise DeviceToolError(f"benchmark_model output: {what} is not finite: {text.strip()!r}")
    return value


def _strip(line: str) -> str:
    return _PREFIX.sub("", line.rstrip("\r\n"), count=1)


def parse_stat_line(line: str) -> PhaseStats:
    """`count=50 first=.. curr=.. min=.. max=.. avg=.. std=..` (or `count=N curr=X(all same)`)."""
    values = {}
    for token in line.replace("(all same)", " ").split():
        key, sep, value = token.partition("=")
        if not sep or not key.isidentifier():
            raise DeviceToolError(f"benchmark_model output: unexpected {token[:40]!r} in a statistics line")
        values[key] = _number(value, key)
    if "count" not in values:
        raise DeviceToolError(f"benchmark_model output: not a statistics line: {line[:80]!r}")
    count = int(values["count"])
    if "min" not in values:  # one distinct value: only count and curr are printed
        curr = values.get("curr")
        if curr is None:
            raise DeviceToolError(f"benchmark_model output: statistics line without values: {line[:80]!r}")
        values.update(min=curr, max=curr, avg=curr, std=0.0, first=values.get("first", curr))
    return PhaseStats(
        count=count,
        first_us=values.get("first"),
        curr_us=values.get("curr"),
        min_us=values["min"],
        max_us=values["max"],
        avg_us=values["avg"],
        std_us=values.get("std", 0.0),
        p5_us=values.get("p5"),
        median_us=values.get("median"),
        p95_us=values.get("p95"),
    )


def parse_benchmark_model(text: str) -> BenchmarkModelResult:
    """Parse the tool's stdout (+stderr). DeviceToolError when the timings line is missing."""
    lines = [_strip(line) for line in text.splitlines()]
    timings = next((m for m in map(_TIMINGS.search, lines) if m), None)
    if timings is None:
        tail = " | ".join(line.strip() for line in lines if line.strip())[-300:]
        raise DeviceToolError(f"benchmark_model printed no 'Inference timings in us' line: {tail or '(no output)'}")
    stats = [parse_stat_line(line) for line in lines if line.startswith("count=")]
    footprint = next((m for m in map(_FOOTPRINT.search, lines) if m), None)
    peak = next((m for m in map(_PEAK.search, lines) if m), None)
    threads = next((int(m.group(1)) for m in map(_THREADS.match, lines) if m), None)
    top_ops, node_types = parse_op_profile("\n".join(lines))
    return BenchmarkModelResult(
        threads=threads,
        init_us=_number(timings["init"], "Init"),
        first_inference_us=_number(timings["first"], "First inference"),
        warmup_avg_us=_number(timings["warmup"], "Warmup (avg)"),
        inference_avg_us=_number(timings["inference"], "Inference (avg)"),
        warmup=stats[-2] if len(stats) >= 2 else None,
        inference=stats[-1] if stats else None,
        init_footprint_mb=_number(footprint.group(1), "init footprint") if footprint else None,
        overall_footprint_mb=_number(footprint.group(2), "overall footprint") if footprint else None,
        peak_memory_mb=_number(peak.group(1), "peak memory") if peak else None,
        top_ops=top_ops,
        node_types=node_types,
    )


def _tables(text: str, title: str) -> list[list[dict[str, str]]]:
    """Every `===== title =====` table as rows of {column: cell}; columns from its header line."""
    tables, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if not (lines[i].startswith("=") and f" {title} " in lines[i]):
            i += 1
            continue
        header = [cell.strip().strip("[]").lower() for cell in lines[i + 1].split("\t") if cell.strip()] if i + 1 < len(lines) else []
        rows, i = [], i + 2
        while i < len(lines) and lines[i].strip():
            cells = [cell.strip() for cell in lines[i].split("\t")]
            if cells and not cells[0]:
                cells = cells[1:]  # rows start with a tab
            if len(cells) >= len(header):
                rows.append(dict(zip(header, cells[: len(header) - 1] + ["\t".join(cells[len(header) - 1 :])])))
            i += 1
        tables.append(rows)
    return tables


def _optional_int(row: dict[str, str], key: str) -> Optional[int]:
    value = row.get(key)
    return int(_number(value, key)) if value not in (None, "") else None


def parse_op_profile(text: str) -> tuple[list[OpTime], list[NodeTypeTime]]:
    """Top ops and per-type totals of the regular runs (`--enable_op_profiling=true`); ([], []) if absent."""
    runs = text.rsplit(REGULAR_RUNS, 1)[-1]
    top = _tables(runs, TOP_TABLE)
    by_type = _tables(runs, NODE_TYPE_TABLE)
    ops = [
        OpTime(
            node_type=row.get("node type", "?"),
            name=row.get("name", ""),
            avg_ms=_number(row["avg ms"], "avg ms"),
            percent=_number(row["%"], "%") if row.get("%") else None,
            first_ms=_number(row["first"], "first") if row.get("first") else None,
            times_called=_optional_int(row, "times called"),
        )
        for row in (top[-1] if top else [])
        if "avg ms" in row
    ]
    types = [
        NodeTypeTime(
            node_type=row.get("node type", "?"),
            count=_optional_int(row, "count"),
            avg_ms=_number(row["avg ms"], "avg ms"),
            percent=_number(row["avg %"], "avg %") if row.get("avg %") else None,
            times_called=_optional_int(row, "times called"),
        )
        for row in (by_type[-1] if by_type else [])
        if "avg ms" in row
    ]
    return ops, types


def benchmark_model_argv(
    binary: str,
    graph: str,
    *,
    num_threads: Optional[int] = None,
    num_runs: int = 50,
    warmup_runs: int = 1,
    min_secs: float = 0.0,
    warmup_min_secs: float = 0.0,
    max_secs: Optional[float] = None,
    enable_op_profiling: bool = False,
    report_peak_memory_footprint: bool = True,
    use_xnnpack: Optional[bool] = None,
    use_gpu: bool = False,
    use_nnapi: bool = False,
    extra_flags: Sequence[str] = (),
) -> list[str]:
    """The argv for one benchmark_model run (run it via Device.run, which quotes it).

    Defaults: 50 timed runs and 1 warm-up, `--min_secs=0 --warmup_min_secs=0` so the tool runs
    exactly the requested counts (its own defaults stretch runs to fill 1 s / 0.5 s), the tool's
    default thread count and delegates, peak-memory monitoring on.
    """
    if num_runs < 1 or warmup_runs < 0 or (num_threads is not None and num_threads < 1):
        raise UsageError("benchmark_model needs num_runs >= 1, warmup_runs >= 0, num_threads >= 1")
    if min_secs < 0 or warmup_min_secs < 0 or (max_secs is not None and max_secs <= 0):
        raise UsageError("benchmark_model needs min_secs >= 0, warmup_min_secs >= 0, max_secs > 0")

    def flag(name: str, value) -> str:
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return f"--{name}={text}"

    argv = [binary, flag("graph", graph), flag("num_runs", num_runs), flag("warmup_runs", warmup_runs)]
    argv += [flag("min_secs", min_secs), flag("warmup_min_secs", warmup_min_secs)]
    if num_threads is not None:
        argv.append(flag("num_threads", num_threads))
    if max_secs is not None:
        argv.append(flag("max_secs", max_secs))
    if enable_op_profiling:
        argv.append(flag("enable_op_profiling", True))
    if report_peak_memory_footprint:
        argv.append(flag("report_peak_memory_footprint", True))
    if use_xnnpack is not None:
        argv.append(flag("use_xnnpack", use_xnnpack))
    if use_gpu:
        argv.append(flag("use_gpu", True))
    if use_nnapi:
        argv.append(flag("use_nnapi", True))
    for extra in extra_flags:
        if not re.fullmatch(r"--[a-z][a-z0-9_]*=\S*", extra):
            raise UsageError(f"benchmark_model flag {extra!r} is not of the form --name=value")
        argv.append(extra)
    return argv
