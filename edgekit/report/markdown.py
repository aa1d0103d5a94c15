"""report.md: the compress report as Markdown that fits a pull-request comment."""

from __future__ import annotations

from edgekit.report.outputs import (compression_table, headline_metric, num, output_table, primary_line,
                                    sequence_examples)
from edgekit.report.preprocessing import preprocessing_lines
from edgekit.report.schema import Report


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.2f} MiB"


def _export_line(export: dict | None) -> list[str]:
    """PyTorch models: the export's own error (exported ONNX FP32 vs PyTorch), before any artifact."""
    if not export:
        return []
    return [f"Export: {export['exporter']}, opset {export['opset']}; ONNX FP32 vs PyTorch on "
            f"{export['samples']} held-out samples: max abs error {export['max_abs_error']:.3g} "
            f"(relative {export['max_relative_error']:.3g}).", ""]


def render_markdown(report: Report) -> str:
    """The primary output, a summary table per artifact, the per-output table, what runs quantized,
    decoded sequences, then calibration, fusions and gates."""
    m = report.model
    lines = [
        f"# edgekit report: `{m.path}`",
        "",
        *_export_line(m.export),
        f"{m.format} · inputs "
        + ", ".join(f"`{t.name}` {'x'.join(map(str, t.shape)) or 'scalar'} {t.dtype}" for t in m.inputs)
        + f" · recipe {report.recipe.get('origin', '')}",
        "",
        *primary_line(report),
        "| artifact | precision | size | ratio | primary | accuracy | drop (pts) | SQNR dB | p50 ms | p90 ms | cold ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for a in report.artifacts:
        acc, lat = a.accuracy, a.latency
        lines.append(
            f"| `{a.name}` | {a.precision} | {_kib(a.bytes)} | {a.size_ratio:.3f} "
            f"| {headline_metric(a)} | {num(acc and acc.accuracy, pct=True)} "
            f"| {num(acc and acc.accuracy_drop_pts, 2)} | {num(acc and acc.sqnr_db, 1)} "
            f"| {num(lat and lat.p50_ms)} | {num(lat and lat.p90_ms)} | {num(lat and lat.cold_start_ms, 1)} |"
        )
    lines += output_table(report) + compression_table(report) + sequence_examples(report)
    c = report.calibration
    lines += [
        "",
        f"Calibration: {c.calibration_samples} samples, validation: {c.validation_samples} held-out "
        f"samples{' (synthetic random inputs: no data given)' if c.synthetic else ''}"
        f"{', labelled' if c.labels else ''}; split: {c.split_rule}.",
    ]
    if m.fixed_dims:
        lines.append("Fixed dims: " + ", ".join(
            f"`{k}` {v['from']} -> {v['to']}" + (f" (batch on axis {v['batch_axis']})" if "batch_axis" in v else "")
            for k, v in m.fixed_dims.items()) + ".")
    if report.preprocessing is not None:
        lines += ["", "## Preprocessing", "", *preprocessing_lines(report.preprocessing.model_dump())]
    for target, fusion in report.fusion.items():
        lines += ["", f"## Fused layers ({target}): {sum(fusion.source_op_counts.values())} source ops -> "
                  f"{sum(fusion.target_op_counts.values())} {target} ops", ""]
        lines += [f"- {g['summary']}: {', '.join(g['layers'])}" for g in fusion.groups] or ["- none"]
    latency = next((a.latency for a in report.artifacts if a.latency), None)
    if latency:
        lines += ["", f"Host latency: {latency.threads} thread(s), {latency.warmup_runs} warm-up + "
                  f"{latency.runs} timed runs."]
    lines += ["", "## Gates", ""]
    if not any(a.gates for a in report.artifacts):
        lines.append("No gates set.")
    for a in report.artifacts:
        for g in a.gates:
            lines.append(f"- {'PASS' if g.passed else 'FAIL'} `{a.name}` {g.gate} {g.detail}")
    lines += [f"- note: {n}" for n in report.notes]
    return "\n".join(lines) + "\n"
