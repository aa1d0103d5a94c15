"""Judging measured rows: throttling, INT8-vs-FP32 speed-ups, gates, and the run's exit status.

Exit precedence (documented in the CLI help too): a missed gate (10) wins over a device tool
failure (9), which wins over a refused host key (12), which wins over an inconclusive device (11).
Definite answers come first: a measured miss will not go away on a retry, so CI must see it even
when another device was unreachable; transport problems come last, host keys (needing a person)
before plain retryable inconclusives. All rows ok (or some skipped) -> 0; every row skipped
(no tool could run anything) -> 9.
"""

from __future__ import annotations

import statistics

from edgekit.bench.schema import GateResult, Row, Speedup, Throttling
from edgekit.errors import DEVICE_OUTCOMES, DeviceToolError

TEMP_RISE_C = 10.0  # a rise this large over one run counts as throttling evidence
SLOWDOWN = 1.15  # last-tenth median this much slower than the first tenth (sustained mode)
MIN_SAMPLES = 20  # fewer timed runs than this: no throughput trend is judged
PRECEDENCE = DEVICE_OUTCOMES  # one precedence for bench and `devices --check` (edgekit.errors)


def temp_rise(before: dict[str, float], after: dict[str, float]) -> float | None:
    """The largest rise over the zones read both times (None when none were)."""
    common = [after[zone] - before[zone] for zone in before if zone in after]
    return round(max(common), 3) if common else None


def throttling(row_before, row_after, latencies, sustained: bool) -> Throttling:
    """Temperature rise, and in sustained mode the slowdown from the first to the last tenth."""
    rise = temp_rise(row_before, row_after)
    slowdown = None
    if sustained and len(latencies) >= MIN_SAMPLES:
        tenth = max(2, len(latencies) // 10)
        first, last = statistics.median(latencies[:tenth]), statistics.median(latencies[-tenth:])
        slowdown = round(last / first, 4) if first > 0 else None
    reasons = []
    if rise is not None and rise >= TEMP_RISE_C:
        reasons.append(f"temperature rose {rise:.1f} C")
    if slowdown is not None and slowdown >= SLOWDOWN:
        reasons.append(f"last tenth {slowdown:.2f}x slower than the first")
    known = rise is not None or slowdown is not None
    return Throttling(detected=bool(reasons) if known else None, temp_rise_c=rise,
                      slowdown=slowdown, reason="; ".join(reasons) or None)


def _stat(a, b) -> str:
    """p50 when both rows have it, else mean (benchmark_model builds that print no median)."""
    if a.latency.p50_ms is not None and b.latency.p50_ms is not None:
        return "p50_ms"
    return "mean_ms"


def speedups(rows: list[Row]) -> list[Speedup]:
    """Per device, each INT8 row against an FP32 row measured by the SAME tool (a runtime change
    is not a precision speed-up), same format first (else flagged same_format False). Rows from
    an emulated device have none: an emulator's timing is not the hardware's."""
    out = []
    measured = [row for row in rows if row.latency is not None and not row.emulated]
    for row in measured:
        if row.precision != "int8":
            continue
        fp32 = [r for r in measured if r.device == row.device and r.precision == "fp32"
                and r.tool == row.tool]
        if not fp32:
            continue
        reference = sorted(fp32, key=lambda r: r.format != row.format)[0]
        stat = _stat(row, reference)
        mine, theirs = getattr(row.latency, stat), getattr(reference.latency, stat)
        if not mine or mine <= 0:
            continue
        out.append(Speedup(device=row.device, int8_artifact=row.artifact,
                           fp32_artifact=reference.artifact, tool=row.tool, stat=stat,
                           same_format=reference.format == row.format,
                           speedup=round(theirs / mine, 4)))
    return out


def apply_gates(rows: list[Row], ups: list[Speedup], max_latency_ms: float | None,
                latency_stat: str, min_speedup: float | None) -> list[GateResult]:
    """Evaluate the gates and mark failing rows gate_failed; returns every evaluation.
    Emulated rows are never gated (and have no speed-ups)."""
    results = []
    by_key = {(row.device, row.artifact): row for row in rows}
    if max_latency_ms is not None:
        for row in rows:
            if row.latency is None or row.emulated:
                continue
            value = getattr(row.latency, latency_stat)
            passed = value is not None and value <= max_latency_ms
            results.append(GateResult(gate=f"max_latency_ms({latency_stat})", device=row.device,
                                      artifact=row.artifact, value=value, limit=max_latency_ms,
                                      passed=passed))
            if value is None:  # a gate that cannot be judged must not pass
                row.status = "gate_failed"
                row.error = (f"{latency_stat} not reported by {row.tool}; gate on p50/mean or "
                             "use the harness")
            elif not passed:
                row.status = "gate_failed"
                row.error = f"{latency_stat} {value:g} ms > {max_latency_ms:g} ms"
    if min_speedup is not None:
        for up in ups:
            passed = up.speedup >= min_speedup
            results.append(GateResult(gate="min_speedup", device=up.device, artifact=up.int8_artifact,
                                      value=up.speedup, limit=min_speedup, passed=passed))
            if not passed:
                row = by_key[(up.device, up.int8_artifact)]
                row.status = "gate_failed"
                row.error = f"speed-up {up.speedup:g}x vs {up.fp32_artifact} < {min_speedup:g}x"
    return results


def unjudged(rows: list[Row], gates: list[GateResult], max_latency_ms: float | None,
             min_speedup: float | None) -> list[str]:
    """A warning per requested gate that judged no row (every measured row emulated, or none
    measured): exit 0 then says nothing about that gate."""
    asked = [("--max-latency-ms", max_latency_ms, "max_latency_ms"), ("--min-speedup", min_speedup, "min_speedup")]
    emulated = sorted({row.device for row in rows if row.emulated and row.latency is not None})
    why = f"every measured row is emulated ({', '.join(emulated)})" if emulated else "no row was measured"
    return [f"{flag} {limit:g} was not checked: {why}" for flag, limit, gate in asked
            if limit is not None and not any(g.gate.startswith(gate) for g in gates)]


def overall(rows: list[Row]) -> tuple[str, int]:
    """The run's status and exit code, by PRECEDENCE; nothing measured at all is a tool failure."""
    statuses = {row.status for row in rows}
    if statuses == {"skipped"}:
        return "tool_failed", DeviceToolError.exit_code
    for status, error in PRECEDENCE:
        if status in statuses:
            return status, error.exit_code
    return "ok", 0


def failure(rows: list[Row]):
    """The EdgekitError to raise for the run (None when it passed), one line naming the worst rows."""
    status, _ = overall(rows)
    if {row.status for row in rows} == {"skipped"}:
        reason = next((row.error for row in rows if row.error), "no tool")
        return DeviceToolError(f"nothing was measured: every artifact was skipped ({reason})")
    for name, error in PRECEDENCE:
        if name == status:
            bad = [f"{row.artifact}@{row.device}" for row in rows if row.status == status]
            shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
            detail = next((row.error for row in rows if row.status == status and row.error), None)
            return error(f"{status.replace('_', ' ')}: {shown}" + (f" ({detail})" if detail else ""))
    return None
