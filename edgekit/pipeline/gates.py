"""Build gates: compare each artifact's measured numbers with the recipe's limits.

Accuracy gates read the primary output's headline (AccuracyReport). The collapse guard (on by
default) holds every INT8/FP16 artifact to floors that only a broken build misses: top-1
agreement >= 0.5 (label accuracy >= half of float's), sequence match >= 0.5, box F1 >= 0.5 and
SQNR >= 3 dB in every channel group of the primary output. A fallback search whose choice missed
its budget on the held-out samples it did not use (`edgekit.debug.confirm`) fails too.
"""

from __future__ import annotations

from edgekit.recipe.schema import Gates
from edgekit.report.schema import ArtifactEntry, GateResult
from edgekit.validate import compression

SLOWER_MARGIN = 1.05  # INT8 p50 above 1.05x FP32's p50 (same target, same host) is flagged
COLLAPSE_AGREEMENT = 0.5
COLLAPSE_SEQUENCE = 0.5
COLLAPSE_BOX_F1 = 0.5
COLLAPSE_GROUP_SQNR_DB = 3.0
GUARDED = ("int8", "fp16")


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

    at_least = lambda v, lim: v >= lim  # noqa: E731
    check("max_accuracy_drop", gates.max_accuracy_drop, acc and acc.accuracy_drop_pts,
          lambda v, lim: v <= lim, "pts" if acc and acc.accuracy is not None else "needs labels")
    check("min_agreement", gates.min_agreement, acc and acc.top1_agreement, at_least,
          _needs(acc, "a scores or sequence output"))
    check("min_sequence_match", gates.min_sequence_match, acc and acc.sequence_match, at_least,
          _needs(acc, "a sequence output"))
    check("min_map_iou", gates.min_map_iou, acc and acc.map_iou, at_least, _needs(acc, "a map output"))
    check("min_box_f1", gates.min_box_f1, acc and acc.box_f1, at_least, _needs(acc, "a boxes output"))
    if gates.min_sqnr_db is not None and acc is not None and acc.sqnr_db is None:  # identical to float
        results.append(GateResult(gate="min_sqnr_db", limit=gates.min_sqnr_db, value=None, passed=True,
                                  detail="identical to the float model"))
    else:
        check("min_sqnr_db", gates.min_sqnr_db, acc and acc.sqnr_db, at_least, "dB")
    unseen = ((entry.details or {}).get("fallback") or {}).get("final_confirmation")
    if unseen and not unseen["met"]:
        seen = ", ".join(f"{k} {v:g}" for k, v in unseen["accuracy"].items())
        results.append(GateResult(gate="fallback_confirmation", limit=0, value=unseen["shortfall"], passed=False,
                                  detail=f"the search's choice missed its budget by {unseen['shortfall']:g} on "
                                         f"{unseen['samples']} held-out samples it did not use ({seen})"))
    if not is_reference:
        check("max_size_bytes", gates.max_size_bytes, entry.bytes, lambda v, lim: v <= lim, "bytes")
        check("max_latency_ms", gates.max_latency_ms, lat and lat.p50_ms, lambda v, lim: v <= lim, "ms p50")
        if gates.collapse_guard and entry.precision in GUARDED and acc is not None:
            results.append(collapse_guard(entry))
    return results


def _needs(acc, what: str) -> str:
    return "" if acc is None or acc.primary_output is None else \
        f"needs {what}; primary output `{acc.primary_output}` is {acc.primary_role}"


def collapse_guard(entry: ArtifactEntry) -> GateResult:
    """The first collapse floor the primary output misses, or a pass naming what was checked."""
    acc = entry.accuracy
    where = f"output `{acc.primary_output}`"
    floors = []
    if acc.top1_agreement is not None:
        floors.append((COLLAPSE_AGREEMENT, acc.top1_agreement, f"{where} top-1 agreement"))
    if acc.accuracy is not None and acc.reference_accuracy:
        floors.append((round(0.5 * acc.reference_accuracy, 6), acc.accuracy,
                       f"{where} accuracy (float {acc.reference_accuracy:g})"))
    if acc.sequence_match is not None:
        floors.append((COLLAPSE_SEQUENCE, acc.sequence_match, f"{where} sequence match"))
    if acc.box_f1 is not None:
        floors.append((COLLAPSE_BOX_F1, acc.box_f1, f"{where} box F1 vs float"))
    if acc.worst_group_sqnr_db is not None:
        floors.append((COLLAPSE_GROUP_SQNR_DB, acc.worst_group_sqnr_db, f"{where} {acc.worst_group} SQNR (dB)"))
    missed = [(limit, value, what) for limit, value, what in floors if value < limit]
    if not missed:
        return GateResult(gate="collapse_guard", limit=0, value=None, passed=True,
                          detail=f"{where}: no collapse ({len(floors)} floor(s) held)")
    # A destroyed row group explains the task metric: name it first.
    missed.sort(key=lambda m: "SQNR" not in m[2])
    limit, value, what = missed[0]
    also = "".join(f"; {w} {v:g} < {lim:g}" for lim, v, w in missed[1:])
    return GateResult(gate="collapse_guard", limit=limit, value=value, passed=False,
                      detail=f"{what} {value:g} < floor {limit:g}{also} (the artifact collapsed)")


def _chance(entry: ArtifactEntry) -> list[tuple[str, str]]:
    """A fallback search that met a fraction floor whose 95% lower bound on these samples is below it."""
    bounds = ((entry.details or {}).get("fallback") or {}).get("confidence") or {}
    how = (f"{bounds.get('candidates')} step(s) confirmed on held-out samples the search did not use"
           if bounds.get("confirmed") else f"the search's own samples, after {bounds.get('candidates')} candidates")
    return [("met_within_noise", f"the search met {metric} >= {b['limit']} with {b['value']:.4g} on "
             f"{b['samples']} held-out samples ({how}); the 95% lower bound is "
             f"{b['lower_95']:.4g}: more validation samples would tell whether it holds")
            for metric, b in bounds.items() if isinstance(b, dict) and b["lower_95"] < b["limit"]]


def _near_ties(entry: ArtifactEntry) -> list[tuple[str, str]]:
    """More float near ties among the search's samples than its per-sample floor lets differ."""
    ties = ((entry.details or {}).get("fallback") or {}).get("near_ties") or {}
    part = ties.get("search")
    if not part or part["near_ties"] <= part["may_differ"]:
        return []
    return [("near_ties_decide", f"{part['near_ties']} of the search's {part['samples']} held-out samples are float "
             f"near ties (top two classes < {ties['margin']:g} apart in log-probability somewhere: any "
             f"quantization noise may flip them), and {ties['metric']} >= {ties['limit']:g} lets "
             f"{part['may_differ']} differ: steps near the budget are decided by single samples; more "
             "held-out samples narrow it")]


def flag_artifacts(entries: list[ArtifactEntry], baseline=lambda target: target) -> list[str]:
    """Set each entry's flags (INT8 that quantized almost nothing, INT8 slower than FP32 on the
    host, a fallback search met within sampling noise or decided by float near ties) and return one
    warning line per flag.
    baseline(target): the target whose fp32 artifact a target is compared with [default: itself]."""
    fp32 = {e.target: e for e in entries if e.precision == "fp32"}
    notes = []
    for e in entries:
        found = compression.flags(e.precision, e.compression or None)
        ref = fp32.get(baseline(e.target))
        if e.precision == "int8" and ref and ref.latency and e.latency and \
                e.latency.p50_ms > SLOWER_MARGIN * ref.latency.p50_ms:
            found.append(("int8_slower_than_fp32", f"INT8 host p50 {e.latency.p50_ms:.3f} ms is above FP32's "
                          f"{ref.latency.p50_ms:.3f} ms ({e.latency.p50_ms / ref.latency.p50_ms:.2f}x)"))
        found += _chance(e) + _near_ties(e)
        e.flags = [flag for flag, _ in found]
        notes += [f"{e.name}: {message}" for _, message in found]
    return notes
