"""Report sections about outputs and compression: the per-output table, what really runs quantized,
decoded sequences side by side, and (HTML) a detector's boxes drawn for float vs each build."""

from __future__ import annotations

from typing import Optional

import numpy as np

from edgekit.report.schema import ArtifactEntry, Report


def num(value, digits: int = 3, pct: bool = False) -> str:
    """A report number: '–' for null, a percentage with pct."""
    if value is None:
        return "–"
    return f"{value * 100:.2f}%" if pct else f"{value:.{digits}f}"


def primary_line(report: Report) -> list[str]:
    """'Primary output: `probs` (scores) ...' from the first validated artifact."""
    acc = next((a.accuracy for a in report.artifacts if a.accuracy), None)
    if acc is None or acc.primary_output is None:
        return []
    others = [f"`{n}` ({m.role})" for n, m in acc.outputs.items() if n != acc.primary_output]
    return [f"Primary output: `{acc.primary_output}` ({acc.primary_role}): the headline and the gates read it"
            + (f"; also {', '.join(others)}." if others else "."), ""]


def headline_metric(a: ArtifactEntry) -> str:
    """The primary output's task metric for the summary table."""
    acc = a.accuracy
    if acc is None:
        return "–"
    for label, value in (("seq match", acc.sequence_match), ("box F1", acc.box_f1), ("map IoU", acc.map_iou),
                         ("top-1", acc.top1_agreement)):
        if value is not None:
            return f"{label} {value * 100:.1f}%"
    return "–"


def output_table(report: Report) -> list[str]:
    """One row per (artifact, output), primary first, for every artifact with more than one output
    or a task metric beyond top-1."""
    rows = []
    for a in report.artifacts:
        if not a.accuracy:
            continue
        items = sorted(a.accuracy.outputs.items(), key=lambda kv: (not kv[1].primary, kv[0]))
        for name, m in items:
            boxes = m.boxes or {}
            rows.append(f"| `{a.name}` | `{name}`{' (primary)' if m.primary else ''} | {m.role} "
                        f"| {num(m.top1_agreement, pct=True)} | {num(m.top5_agreement, pct=True)} "
                        f"| {num(m.sequence_match, pct=True)} | {num(m.map_iou, 3)} | {num(boxes.get('f1'), 3)} "
                        f"| {num(m.sqnr_db, 1)} | {m.worst_group or '–'} {num(m.worst_group_sqnr_db, 1)} |")
    if not rows:
        return []
    return ["", "## Outputs", "",
            "| artifact | output | role | top-1 | top-5 | sequence match | map IoU | box F1 | SQNR dB "
            "| worst group (dB) |", "|---|---|---|---:|---:|---:|---:|---:|---:|---|", *rows]


def compression_table(report: Report) -> list[str]:
    """Share of conv/matmul MACs per arithmetic and quantized/float op counts, with flags."""
    rows = []
    for a in report.artifacts:
        c = a.compression
        if not c:
            continue
        share = ", ".join(f"{k} {v:.0%}" for k, v in c.get("mac_share", {}).items()) or "–"
        ops = c.get("ops", {})
        rows.append(f"| `{a.name}` | {share} | {ops.get('quantized', 0)} | {ops.get('float', 0)} "
                    f"| {ops.get('conversion', 0)} | {', '.join(a.flags) or '–'} |")
    if not rows:
        return []
    return ["", "## What runs quantized", "",
            "| artifact | conv/matmul MACs | quantized ops | float ops | (de)quantize ops | flags |",
            "|---|---|---:|---:|---:|---|", *rows]


def sequence_examples(report: Report, lines: int = 5) -> list[str]:
    """The first decoded strings of the primary sequence output: float next to each build."""
    builds = [a for a in report.artifacts if a.accuracy and a.precision != "fp32"
              and a.accuracy.outputs.get(a.accuracy.primary_output or "", None) is not None
              and a.accuracy.outputs[a.accuracy.primary_output].examples]
    if not builds:
        return []
    name = builds[0].accuracy.primary_output
    header = "| float | " + " | ".join(f"`{a.name}`" for a in builds) + " |"
    out = ["", f"## Decoded sequences (`{name}`, first {lines})", "", header,
           "|---|" + "---|" * len(builds)]
    columns = [a.accuracy.outputs[name].examples for a in builds]
    for i, example in enumerate(columns[0][:lines]):
        cells = [f"{col[i]['candidate']}{'' if col[i]['candidate'] == col[i]['reference'] else ' ✗'}"
                 for col in columns]
        out.append(f"| {example['reference']} | " + " | ".join(cells) + " |")
    return out


def _image(sample: dict[str, np.ndarray]) -> Optional[np.ndarray]:
    """The first image-like input of one validation sample as HxWxC in [0, 1], or None."""
    for array in sample.values():
        x = np.asarray(array, dtype=np.float64)
        x = x[0] if x.ndim == 4 else x
        if x.ndim != 3:
            continue
        if x.shape[0] in (1, 3) and x.shape[-1] not in (1, 3):
            x = x.transpose(1, 2, 0)
        span = x.max() - x.min()
        return (x - x.min()) / span if span > 0 else x * 0
    return None


def boxes_figure(report: Report, sample: Optional[dict[str, np.ndarray]]) -> Optional[str]:
    """PNG data URI: the primary boxes output's detections on the first validation image, float
    next to each non-float build, or None when there is no detector head or no image input."""
    from edgekit.report.plots import figure_data_uri, pyplot

    builds = [a for a in report.artifacts if a.accuracy and a.accuracy.primary_role == "boxes"]
    image = None if sample is None else _image(sample)
    if not builds or image is None:
        return None
    name = builds[0].accuracy.primary_output
    first = builds[0].accuracy.outputs[name].boxes["first_sample"]
    panels = [("float", first["reference"])] + [(a.name, a.accuracy.outputs[name].boxes["first_sample"]["candidate"])
                                                for a in builds if a.precision != "fp32"]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    for ax, (title, dets) in zip(axes[0], panels):
        ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None)
        for x1, y1, x2, y2, score, cls in dets:
            ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1,
                                       color="#2ca02c" if title == "float" else "#d62728"))
        ax.set_title(f"{title}: {len(dets)} boxes", fontsize=8)
        ax.set_axis_off()
    return figure_data_uri(fig)
