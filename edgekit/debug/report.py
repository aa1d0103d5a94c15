"""Render a debug document (`session.run_debug`) as Markdown and as HTML with charts.

The document is plain JSON data; layers come in graph order with their per-tensor error and
measured sensitivity; `ranking` lists layers worst first; `culprits` are the flagged layers.
"""

from __future__ import annotations

import html
import math

from edgekit.report.ladder import unseen_verdict
from edgekit.report.page import html_table, image, md_table, page_html
from edgekit.report.plots import figure_data_uri, pyplot


def _num(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:.{digits}g}"
    return str(value)


def _ranked_rows(doc: dict) -> list[list[str]]:
    by_node = {layer["node"]: layer for layer in doc["layers"]}
    rows = []
    for rank, item in enumerate(doc["ranking"], start=1):
        layer = by_node.get(item["node"], {})
        flags = list(layer.get("flags", []))
        rows.append([str(rank), item["layer"], item["op_type"], _num(item["score"]),
                     _num(item["quant_alone_sqnr_db"]), _num(item["float_alone_sqnr_db"]),
                     _num(layer.get("rmse_over_scale")), _num(layer.get("sqnr_db")), _num(layer.get("cosine"), 6),
                     _num(layer.get("max_abs_error")), _num(layer.get("channel_range_ratio")), ", ".join(flags)])
    return rows


RANK_HEADER = ["rank", "layer", "op", "sensitivity", "SQNR only it INT8 (dB)", "SQNR only it float (dB)",
               "RMSE/scale", "tensor SQNR (dB)", "cosine", "max abs err", "channel range ratio", "flags"]
STEP_HEADER = ["step", "phase", "float layers", "acc drop (pts)", "agreement", "SQNR (dB)", "bytes",
               "p50 (ms)", "met", "unseen samples"]


def _step_rows(fallback: dict) -> list[list[str]]:
    rows = []
    for i, step in enumerate(fallback["steps"]):
        acc = step["accuracy"]
        rows.append([str(i), step["phase"], ", ".join(step["float_layers"]) or "(none)",
                     _num(acc.get("accuracy_drop_pts")), _num(acc.get("top1_agreement")), _num(acc.get("sqnr_db")),
                     str(step["bytes"]), _num(step["latency_p50_ms"]), "yes" if step["met"] else "no",
                     unseen_verdict(step.get("confirmation"))])
    return rows


def _summary_lines(doc: dict) -> list[str]:
    int8 = doc["int8"]
    lines = [f"- model: `{doc['model']}` ({doc['target']}), {doc['samples']} held-out samples",
             f"- full INT8: top-1 agreement {_num(int8.get('top1_agreement'))}, accuracy drop "
             f"{_num(int8.get('accuracy_drop_pts'))} pts, output SQNR {_num(int8.get('sqnr_db'))} dB",
             f"- layers that explain most of the output error: {', '.join(doc['culprits']) or '(none)'}"]
    return lines


def render_markdown(doc: dict) -> str:
    """The per-layer report, the fallback steps and the calibration warnings as Markdown."""
    parts = ["# edgekit debug: INT8 error by layer", "", *_summary_lines(doc), "",
             "## Layers, most sensitive first", "",
             "Sensitivity: output noise fraction caused by the layer alone (only it INT8) or removed by "
             "keeping it alone in float. RMSE/scale is in INT8 steps of the tensor's own scale: an "
             "outlier channel inflates the scale and hides its error there, see the channel range ratio.",
             "", *md_table(RANK_HEADER, _ranked_rows(doc)), ""]
    if doc.get("calibration_warnings"):
        parts += ["## Calibration warnings", "", *[f"- {w}" for w in doc["calibration_warnings"]], ""]
    fallback = doc.get("fallback")
    if fallback:
        outcome = "met" if fallback["met"] else "NOT met"
        parts += ["## Float fallback", "", f"Budget: {fallback['budget_text']} ({outcome}; {fallback['stopped']}). "
                  f"Strategy: {fallback['strategy']}. Float layers kept: "
                  f"{', '.join(fallback['float_layers']) or '(none)'}.", "",
                  *md_table(STEP_HEADER, _step_rows(fallback)), ""]
    if doc.get("ladder"):
        from edgekit.report.ladder import ladder_section

        parts += ladder_section(doc["target"], fallback, fallback["budget_text"], doc["ladder"])
    return "\n".join(parts)


def _chart(doc: dict) -> str:
    layers = doc["layers"]
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6.0, 0.5 * len(layers) + 2), 6.5), sharex=True)
    names = [layer["layer"] for layer in layers]
    x = range(len(layers))
    top.bar(x, [layer.get("sensitivity") or 0.0 for layer in layers],
            color=["#c0392b" if layer["layer"] in doc["culprits"] else "#7f8c8d" for layer in layers])
    top.set_ylabel("sensitivity\n(output noise fraction)")
    top.set_title("INT8 error by layer, graph order")
    bottom.bar(x, [layer.get("rmse_over_scale") or 0.0 for layer in layers], color="#2c7fb8")
    bottom.set_ylabel("tensor RMSE / scale")
    bottom.set_xticks(list(x), names, rotation=60, ha="right", fontsize=8)
    fig.tight_layout()
    return figure_data_uri(fig)


def render_html(doc: dict) -> str:
    """A self-contained HTML page: summary, chart (data URI), tables."""
    summary = "".join(f"<li>{html.escape(line[2:]).replace('`', '')}</li>" for line in _summary_lines(doc))
    sections = [f"<h1>edgekit debug: INT8 error by layer</h1><ul>{summary}</ul>",
                image(_chart(doc), "error by layer"),
                "<h2>Layers, most sensitive first</h2>", html_table(RANK_HEADER, _ranked_rows(doc))]
    if doc.get("calibration_warnings"):
        items = "".join(f"<li>{html.escape(w)}</li>" for w in doc["calibration_warnings"])
        sections.append(f"<h2>Calibration warnings</h2><ul>{items}</ul>")
    if doc.get("fallback"):
        fb = doc["fallback"]
        sections += [f"<h2>Float fallback</h2><p>Budget: {html.escape(fb['budget_text'])} "
                     f"({'met' if fb['met'] else 'not met'}; {html.escape(fb['stopped'])}).</p>",
                     html_table(STEP_HEADER, _step_rows(fb))]
    return page_html("edgekit debug", sections)
