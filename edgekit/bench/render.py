"""bench.json / bench.md / bench.html from a BenchReport, written atomically into one directory.

The Markdown fits a PR comment (rows and tables only, cut below GitHub's 65,536 characters);
the HTML is one self-contained file with the plots embedded as base64 PNG: the INT8 speed-up per
device, the latency distribution per device, and latency over time in sustained mode.
"""

from __future__ import annotations

import html
from pathlib import Path

from edgekit.bench import plots
from edgekit.bench.schema import BenchReport, Row
from edgekit.fsutil import write_json_atomic, write_text_atomic
from edgekit.report.page import html_table, image, md_table, page_html

MD_LIMIT = 60_000
_FACT_KEYS = ("model", "cpu", "soc", "os", "kernel", "abi", "jetpack", "governor", "emulated")
HEADERS = ["device", "artifact", "precision", "status", "tool", "p50 ms", "p90 ms", "p99 ms",
           "mean ms", "std ms", "cold start ms", "peak RSS MB", "runs", "note"]


def _ms(value) -> str:
    return "–" if value is None else f"{value:.4g}"


def _note(row: Row) -> str:
    if row.error:
        return row.error
    if row.emulated and row.latency is not None:
        return f"emulated ({row.emulated}): latency not a device's, not gated or compared"
    if row.gpu_compute_ms.get("median") is not None:
        return f"GPU compute p50 {row.gpu_compute_ms['median']:.4g} ms"
    return ""


def _row_cells(row: Row) -> list[str]:
    lat = row.latency
    throttled = row.throttling.detected if row.throttling else None
    cells = [row.device, row.artifact, row.precision,
             row.status.upper() if row.status != "ok" else "ok",
             (row.tool or "–") + (" (emulated)" if row.emulated else "")]
    if lat is None:
        return cells + ["–"] * 8 + [_note(row)]
    return cells + [_ms(lat.p50_ms), _ms(lat.p90_ms), _ms(lat.p99_ms), _ms(lat.mean_ms),
                    _ms(lat.std_ms), _ms(lat.cold_start_ms),
                    "–" if lat.peak_rss_mb is None else f"{lat.peak_rss_mb:.1f}",
                    f"{lat.runs}" + (" ⚠ throttled" if throttled else ""), _note(row)]


def _fmt(value, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _sections(report: BenchReport) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report's tables after the main one: (title, headers, rows), empty ones left out."""
    s = report.settings
    speedups = [[u.device, u.int8_artifact,
                 u.fp32_artifact + ("" if u.same_format else " (other format)"), u.tool or "–",
                 u.stat.removesuffix("_ms"), f"{u.speedup:.2f}x"] for u in report.speedups]
    accuracy = [[row.device, row.artifact, a.reference or "–", a.samples or "–", out.name,
                 _fmt(out.max_abs_error), _fmt(out.cosine, 6),
                 "∞" if out.sqnr_db is None else f"{out.sqnr_db:.1f}",
                 "–" if out.top1_agreement is None else f"{out.top1_agreement:.1%}"]
                for row in report.rows if (a := row.accuracy) for out in a.outputs]
    cross_isa = [[row.device, row.artifact, a.reference or "–", a.samples or "–", out.name,
                  _fmt(out.max_abs_error), "∞" if out.sqnr_db is None else f"{out.sqnr_db:.1f}",
                  "–" if out.top1_agreement is None else f"{out.top1_agreement:.1%}"]
                 for row in report.rows if (a := row.host_agreement) for out in a.outputs]
    not_measured = [[row.device, row.artifact, check.error] for row in report.rows
                    for check in (row.accuracy, row.host_agreement) if check and check.error]
    top_ops = [[row.device, row.artifact, op.node_type, op.name, f"{op.avg_ms:.4g}",
                _fmt(op.percent, 3)] for row in report.rows for op in row.top_ops]
    gates = [[g.gate, g.device, g.artifact, "–" if g.value is None else f"{g.value:g}",
              f"{g.limit:g}", "pass" if g.passed else "**FAIL**"] for g in report.gates]
    tables = [
        ("INT8 vs FP32 speed-up (same device, same tool)",
         ["device", "int8", "fp32", "tool", "stat", "speed-up"], speedups),
        (f"On-device accuracy vs the host FP32 run ({Path(s.accuracy_inputs or 'inputs').name})",
         ["device", "artifact", "reference", "samples", "output", "max abs err", "cosine",
          "SQNR dB", "top-1 agree"], accuracy),
        ("Same artifact, this host vs the device (another ISA's kernels)",
         ["device", "artifact", "host run", "samples", "output", "max abs diff", "SQNR dB",
          "top-1 agree"], cross_isa),
        ("Accuracy not measured", ["device", "artifact", "why"], not_measured),
        ("Top ops (benchmark_model op profile, avg ms per run)",
         ["device", "artifact", "op", "name", "avg ms", "%"], top_ops),
        ("Gates", ["gate", "device", "artifact", "value", "limit", "result"], gates),
        ("Warnings", ["warning"], [[w] for w in report.warnings]),
    ]
    return [table for table in tables if table[2]]


def _mode(report: BenchReport) -> str:
    s = report.settings
    mode = f"sustained {s.duration_s:g} s" if s.duration_s else f"{s.runs} runs, {s.warmup} warm-up"
    return f"{mode} · tool {s.tool} · threads {s.threads or 'default'}"


def markdown(report: BenchReport) -> str:
    lines = [f"## edgekit bench: {report.status.upper().replace('_', ' ')} (exit {report.exit_code})",
             "", f"`{report.build}` · {_mode(report)} · edgekit {report.edgekit_version} · "
             f"{report.created_at}", ""]
    lines += md_table(HEADERS, [_row_cells(row) for row in report.rows])
    for title, headers, rows in _sections(report):
        lines += ["", f"**{title}**", ""] + md_table(headers, rows)
    lines += ["", "<details><summary>Devices</summary>", ""]
    lines += md_table(["device", "kind", "status", *_FACT_KEYS, "error"],
                       [[d.name, d.kind, d.status, *[d.facts.get(k) or "–" for k in _FACT_KEYS],
                         d.error or ""] for d in report.devices])
    lines += ["", "</details>", ""]
    text = "\n".join(lines)
    if len(text) > MD_LIMIT:
        text = text[:MD_LIMIT].rsplit("\n", 1)[0] + "\n\n… (cut; see bench.json)\n"
    return text


def _facts_cell(key: str, value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def html_page(report: BenchReport) -> str:
    parts = [f"<h1>edgekit bench: {html.escape(report.status.upper().replace('_', ' '))} "
             f"(exit {report.exit_code})</h1>",
             f"<p>{html.escape(report.build)} · {html.escape(_mode(report))} · edgekit "
             f"{html.escape(report.edgekit_version)} · {html.escape(report.created_at)}</p>",
             html_table(HEADERS, [_row_cells(row) for row in report.rows])]
    for title, headers, rows in _sections(report):
        parts += [f"<h2>{html.escape(title)}</h2>",
                  html_table(headers, [[str(c).replace("**", "") for c in r] for r in rows])]
        if title.startswith("INT8 vs FP32"):
            parts.append(image(plots.speedup_bars(report.speedups), "INT8 speed-up per device"))
    for device in report.devices:
        rows = [row for row in report.rows if row.device == device.name]
        emulated = device.facts.get("emulated")
        parts.append(f"<h2>{html.escape(device.name)} ({html.escape(device.kind)}): "
                     f"{html.escape(device.status)}"
                     + (f" · EMULATED ({html.escape(emulated)}): latency is not a device's"
                        if emulated else "") + "</h2>")
        facts = [[key, _facts_cell(key, value)] for key, value in device.facts.items()
                 if value not in (None, {}, "")]
        parts.append(html_table(["fact", "value"], facts) if facts else "<p>no device facts</p>")
        title = device.name + (" (EMULATED: not a device's latency)" if emulated else "")
        parts.append(image(plots.distribution(title, rows), f"latency distribution {device.name}"))
        if report.settings.duration_s:
            parts += [image(plots.timeline(row), f"latency over time {row.artifact}") for row in rows]
    return page_html("edgekit bench", parts)


def write_reports(report: BenchReport, out_dir: Path) -> dict[str, Path]:
    """Write the three files into `out_dir` (each atomically); returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "bench.json", "md": out_dir / "bench.md", "html": out_dir / "bench.html"}
    write_json_atomic(paths["json"], report.model_dump(mode="json"))
    write_text_atomic(paths["md"], markdown(report))
    write_text_atomic(paths["html"], html_page(report))
    return paths
