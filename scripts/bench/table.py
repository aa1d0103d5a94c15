"""The benchmark's table: rows with PASS/MISS against the targets, rendered as Markdown.

Used by scripts/bench/run.py; kept apart so the measuring script stays readable.
"""

from __future__ import annotations

import statistics

LATENCY_MARGIN = 1.05  # "no worse than raw" allows 5% for timing noise on a shared machine


def paired_ratio(latency: dict, num: str, den: str) -> float:
    """Median over rounds of num/den measured in the same round (cancels slow load drifts)."""
    return round(statistics.median(a / b for a, b in zip(latency[num]["rounds_ms"], latency[den]["rounds_ms"])), 4)


def ratio(a, b) -> float | None:
    return None if a is None or b in (None, 0) else round(a / b, 3)


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def ms(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def row(metric: str, ek, raw, target: str = "", ok: bool | None = None, digits: int = 2,
        rel: float | None = None) -> list[str]:
    """[metric, edgekit, raw, edgekit/raw (`rel`, else computed), target, PASS|MISS|n/a ('' if no target)]."""
    if rel is None and all(isinstance(v, (int, float)) for v in (ek, raw)):
        rel = ratio(ek, raw)
    result = "" if target in ("", "info") else ("n/a" if ok is None else ("PASS" if ok else "MISS"))
    return [metric, fmt(ek, digits), fmt(raw, digits), "" if rel is None else f"x{rel:.3f}", target, result]


def at_most(value, limit) -> bool | None:
    return None if value is None else value <= limit


def at_least(value, other) -> bool | None:
    return None if value is None or other is None else value >= other


MARGIN = f"<= raw (+{round((LATENCY_MARGIN - 1) * 100)}%)"


def _latency_rows(lat: dict, names: dict[str, tuple[str, str]], runtime: str) -> list[list[str]]:
    """FP32 -> INT8 ms per side, INT8/FP32 (target: no worse than raw) and INT8 ms; every ratio is
    the median of per-round ratios (models timed in the same round share the background load)."""
    m = {k: v["median_ms"] for k, v in lat.items()}
    (ek32, ek8), (raw32, raw8) = names["edgekit"], names["raw"]
    ek, raw = paired_ratio(lat, ek8, ek32), paired_ratio(lat, raw8, raw32)
    speed = paired_ratio(lat, ek8, raw8)
    return [row(f"{runtime} latency ms FP32 -> INT8 (1 thread, median)", f"{ms(m[ek32])} -> {ms(m[ek8])}",
                f"{ms(m[raw32])} -> {ms(m[raw8])}"),
            row("INT8/FP32 latency", ek, raw, MARGIN, at_most(ratio(ek, raw), LATENCY_MARGIN), 3),
            row("INT8 latency ms", m[ek8], m[raw8], MARGIN, at_most(speed, LATENCY_MARGIN), 4, rel=speed)]


def _quality_rows(label: str, ek: dict, raw: dict, target: str = "info") -> list[list[str]]:
    """Top-1 agreement and SQNR of each side's INT8 against FP32 (target: edgekit >= raw, or info)."""
    def ok(key):
        return None if target == "info" else at_least(ek[key], raw[key])

    where = f"{ek['samples']} held-out, {label}; FP32 top-1 spans {ek.get('reference_distinct_top1', '?')} classes"
    return [row(f"INT8 top-1 agreement with FP32 ({where})", ek["top1_agreement"], raw["top1_agreement"], target,
                ok("top1_agreement"), 3),
            row("INT8 SQNR dB vs FP32 output", ek["sqnr_db"], raw["sqnr_db"], target, ok("sqnr_db"), 1)]


def _tflite_rows(r: dict) -> list[list[str]]:
    ek, raw, size, v = r["edgekit"], r["raw"], r["bytes"], r["edgekit_validation"]
    rows = [row(f"compress wall s, total (edgekit also validates {v['samples']} samples, {v['runs']} timed runs)",
                ek["wall_s"], raw["wall_s"], "<= x1.10", at_most(ratio(ek["wall_s"], raw["wall_s"]), 1.10)),
            row("same work s (edgekit total minus float reference, validation, report)", ek["same_work_s"],
                raw["wall_s"], "<= x1.10", at_most(ratio(ek["same_work_s"], raw["wall_s"]), 1.10)),
            row("converter calls only s (FP32 + INT8)", ek["convert_s"], raw["convert_s"], "<= x1.10",
                at_most(ratio(ek["convert_s"], raw["convert_s"]), 1.10))]
    ek_size = ratio(size["edgekit_int8"], size["edgekit_fp32"])
    rows.append(row("INT8/FP32 size", ek_size, ratio(size["raw_int8"], size["raw_fp32"]), "<= 0.27",
                    at_most(ek_size, 0.27), 3))
    rows += _per_tensor_rows(r.get("per_tensor"))
    rows += _latency_rows(r["latency"], {"edgekit": ("edgekit_fp32", "edgekit_int8"),
                                         "raw": ("raw_fp32", "raw_int8")}, "LiteRT")
    if "accuracy" in r:
        acc = r["accuracy"]
        rows.append(row(f"accuracy drop pts, all {acc['samples']} held-out digits", acc["drop_pts"]["edgekit"],
                        acc["drop_pts"]["raw"], "<= 0.5", at_most(acc["drop_pts"]["edgekit"], 0.5)))
        rows.append(row(f"accuracy drop pts, edgekit report ({acc['report_samples']} validation samples)",
                        acc["report_drop_pts"], "-", "<= 0.5", at_most(acc["report_drop_pts"], 0.5)))
    else:
        rows += _quality_rows("vs its own FP32", r["heldout"]["edgekit"], r["heldout"]["raw"])
    return rows


def _per_tensor_rows(pt: dict | None) -> list[list[str]]:
    """edgekit with per-tensor weights (int8.per_channel: false): smaller, at an accuracy cost."""
    if not pt:
        return []
    size = ratio(pt["int8_bytes"], pt["fp32_bytes"])
    return [row("INT8/FP32 size, per-tensor weights (int8.per_channel: false)", size, "-", "<= 0.27",
                at_most(size, 0.27), 3),
            row("INT8 SQNR dB vs FP32 output, per-tensor weights (per-channel: the SQNR row)",
                pt["heldout"]["sqnr_db"], "-", "info", digits=1)]


def _onnx_rows(r: dict) -> list[list[str]]:
    ek, raw = r["edgekit"], r["raw"]
    ek_size = ratio(ek["int8_bytes"], ek["fp32_bytes"])
    return [row("end-to-end s (edgekit: fuse, verify, FP32 + INT8; raw: quantize_static)", ek["work_s"],
                raw["work_s"], "info"),
            row("peak RSS MB of that process", ek["tree_peak_mb"], raw["tree_peak_mb"], "info", digits=0),
            row("INT8/FP32 size", ek_size, ratio(raw["int8_bytes"], raw["fp32_bytes"]), "<= 0.27",
                at_most(ek_size, 0.27), 3),
            *_per_tensor_rows(r.get("per_tensor")),
            *_latency_rows(r["latency"], {"edgekit": ("edgekit_fp32", "edgekit_int8"), "raw": ("fp32", "raw_int8")},
                           "onnxruntime"),
            *_quality_rows("vs the exported FP32", ek, raw, ">= raw")]


def _section_rows(title: str, result: dict | None, make) -> list[list[str]]:
    if not result:
        return []
    rows = [["ERROR: " + result["error"], "", "", "", "", "n/a"]] if "error" in result else make(result)
    return [[title if i == 0 else "", *r] for i, r in enumerate(rows)]


def _cache_rows(c: dict) -> list[list[str]]:
    note = "cache hit, identical output" if c["hit"] and c["identical"] else \
        f"hits {[x['hit'] for x in c['runs']]}, identical {c['identical']}"
    return [row(f"cold compress s -> unchanged rebuild s (CLI, {note})", f"{fmt(c['cold_s'])} -> {fmt(c['rebuild_s'])}",
                "", "< 2 s", c["hit"] and c["rebuild_s"] < 2)]


def _memory_rows(m: dict) -> list[list[str]]:
    a, b = m["runs"]
    counts = f"{a['calibration_samples']} -> {b['calibration_samples']} samples"
    return [[f"peak RSS MB, {what}, {counts}", f"{a[key]:.0f} -> {b[key]:.0f}", "", f"x{m[rel]:.3f}", "<= x1.15",
             "PASS" if m[rel] <= 1.15 else "MISS"]
            for what, key, rel in (("whole process tree", "tree_peak_mb", "tree_ratio"),
                                   ("largest single process", "max_process_mb", "process_ratio"))]


def build_rows(results: dict) -> list[list[str]]:
    """Table rows [section, metric, edgekit, raw, edgekit/raw, target, result] from a results dict."""
    rows = []
    for name, r in results.get("tflite", {}).items():
        title = f"tflite {name}" + ("" if "error" in r else f" ({r['input']}, {r['calibration_samples']} cal.)")
        rows += _section_rows(title, r, _tflite_rows)
    rows += _section_rows("cache mobilenet_v2", results.get("cache"), _cache_rows)
    rows += _section_rows("memory mobilenet_v2", results.get("memory"), _memory_rows)
    onnx = results.get("onnx")
    title = "onnx mobilenet_v2" + ("" if not onnx or "error" in onnx else
                                   f" ({onnx['calibration_samples']} cal., opset {onnx['opset']})")
    return rows + _section_rows(title, onnx, _onnx_rows)


HEADER = ["section", "metric", "edgekit", "raw library", "edgekit/raw", "target", "result"]


def render_markdown(rows: list[list[str]]) -> str:
    """A Markdown table (pipes in cells escaped)."""
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(HEADER), line(["---"] * len(HEADER)), *(line(r) for r in rows)])


def summary(results: dict) -> str:
    meta = results["meta"]
    return (f"edgekit bench ({meta['mode']}), {meta['cpu']}, {meta['cpus']} CPUs, load average "
            f"{meta['loadavg_start']} -> {meta.get('loadavg_end')}, {meta.get('wall_s', 0):.0f} s; "
            + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))


# ----------------------------------------------------------------------------- main
