"""Build gates: compare each artifact's measured numbers with the recipe's limits."""

from __future__ import annotations

from edgekit.recipe.schema import Gates
from edgekit.report.schema import ArtifactEntry, GateResult


def evaluate_gates(entry: ArtifactEntry, gates: Gates, is_reference: bool) -> list[GateResult]:
    """GateResults for one artifact; the FP32 reference is held to accuracy gates only."""
    acc, lat = entry.accuracy, entry.latency
    results = []

    def check(name, limit, value, ok, unit=""):
        if limit is None:
            return
        if value is None:
            results.append(GateResult(gate=name, limit=limit, value=None, passed=False,
                                      detail=f"not measurable ({unit or 'no data'})"))
            return
        results.append(GateResult(gate=name, limit=limit, value=value, passed=ok(value, limit),
                                  detail=f"{value:g} vs limit {limit:g}{unit and ' ' + unit}"))

    check("max_accuracy_drop", gates.max_accuracy_drop, acc and acc.accuracy_drop_pts,
          lambda v, lim: v <= lim, "pts" if acc and acc.accuracy is not None else "needs labels")
    check("min_agreement", gates.min_agreement, acc and acc.top1_agreement, lambda v, lim: v >= lim)
    if gates.min_sqnr_db is not None and acc is not None and acc.sqnr_db is None:  # identical to float
        results.append(GateResult(gate="min_sqnr_db", limit=gates.min_sqnr_db, value=None, passed=True,
                                  detail="identical to the float model"))
    else:
        check("min_sqnr_db", gates.min_sqnr_db, acc and acc.sqnr_db, lambda v, lim: v >= lim, "dB")
    if not is_reference:
        check("max_size_bytes", gates.max_size_bytes, entry.bytes, lambda v, lim: v <= lim, "bytes")
        check("max_latency_ms", gates.max_latency_ms, lat and lat.p50_ms, lambda v, lim: v <= lim, "ms p50")
    return results
