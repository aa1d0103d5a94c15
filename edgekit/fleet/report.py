"""fleet.json, fleet.md and fleet.html: a model x device table (size, accuracy drop, p50 latency)
and a plot of accuracy drop against latency per model (report.page and report.plots helpers)."""

from __future__ import annotations

import html
from pathlib import Path

from edgekit.fsutil import write_json_atomic, write_text_atomic
from edgekit.report.outputs import num
from edgekit.report.page import html_table, image, md_table, page_html


def _p50(model: dict, device: str, artifact: str):
    bench = model["bench"].get(device, {})
    if bench.get("status") != "ok":
        return None
    return next((r["p50_ms"] for r in bench["rows"] if r["artifact"] == artifact), None)


def _drop(artifact: dict):
    """Accuracy drop in points; without labels, the top-1 disagreement with float in points."""
    if artifact["accuracy_drop_pts"] is not None:
        return artifact["accuracy_drop_pts"]
    agreement = artifact["top1_agreement"]
    return None if agreement is None else round(100 * (1 - agreement), 3)


def _rows(document: dict) -> tuple[list[list], list[str]]:
    """Table rows (model, artifact, KiB, drop, p50 per device) and notes on failed entries."""
    devices, rows, notes = document["devices"], [], []
    for model in document["models"]:
        if model["status"] != "ok":
            notes.append(f"- **{model['name']}** failed: {model['error']}")
            continue
        source = " (from the cache)" if model["cached"] else ""
        for a in model["artifacts"]:
            cells = [num(_p50(model, d, a["name"])) for d in devices] if devices else [num(a["host_p50_ms"])]
            rows.append([f"{model['name']}{source}", a["name"], num(a["bytes"] / 1024, 1), num(_drop(a)), *cells])
        notes += [f"- **{model['name']}** on {d}: {b['error']}" for d, b in model["bench"].items()
                  if b["status"] != "ok"]
    return rows, notes


def _headers(document: dict) -> list[str]:
    return ["model", "artifact", "KiB", "accuracy drop"] + [f"{d} p50 ms" for d in document["devices"] or ["host"]]


INTRO = ("Accuracy drop in points (top-1 disagreement with float where there are no labels); latency "
         "p50 in ms per device (host when no device is listed).")


def markdown(document: dict) -> str:
    rows, notes = _rows(document)
    lines = ["# edgekit fleet", "", f"Executor: {document['executor']}. {INTRO}", "",
             *md_table(_headers(document), rows)]
    return "\n".join(lines + ([""] + notes if notes else []) + [""])


def _plot(document: dict) -> str | None:
    from edgekit.report.plots import figure_data_uri, pyplot

    device = (document["devices"] or [None])[0]
    series = []
    for model in document["models"]:
        if model["status"] != "ok":
            continue
        points = [(_p50(model, device, a["name"]) if device else a["host_p50_ms"], _drop(a), a["precision"])
                  for a in model["artifacts"]]
        points = sorted((x, y, p) for x, y, p in points if x is not None and y is not None)
        if points:
            series.append((model["name"], points))
    if not series:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, points in series:
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
        for x, y, precision in points:
            ax.annotate(precision, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"p50 latency on {device or 'the host'} (ms)")
    ax.set_ylabel("accuracy drop (points)")
    ax.legend(fontsize=8)
    return figure_data_uri(fig)


def html_page(document: dict) -> str:
    rows, notes = _rows(document)
    parts = ["<h1>edgekit fleet</h1>", f"<p>Executor: {html.escape(document['executor'])}. {INTRO}</p>",
             image(_plot(document), "accuracy drop vs latency per model"), html_table(_headers(document), rows)]
    if notes:  # failed entries: the notes' error lines come from untrusted files
        parts.append("<ul>" + "".join(f"<li>{html.escape(n[2:])}</li>" for n in notes) + "</ul>")
    return page_html("edgekit fleet", parts)


def write_reports(document: dict, out: Path) -> None:
    write_json_atomic(out / "fleet.json", document)
    write_text_atomic(out / "fleet.md", markdown(document))
    write_text_atomic(out / "fleet.html", html_page(document))
