"""report.html: the Markdown report's facts plus plots of size, latency and error per artifact."""

from __future__ import annotations

import html

from edgekit.report.markdown import render_markdown
from edgekit.report.plots import figure_data_uri, pyplot
from edgekit.report.schema import Report


def _plots(report: Report) -> list[str]:
    plt = pyplot()
    names = [a.name for a in report.artifacts]
    uris = []
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].bar(names, [a.bytes / 1024 for a in report.artifacts], color="#4C72B0")
    axes[0].set_title("size (KiB)")
    timed = [a for a in report.artifacts if a.latency]
    if timed:
        axes[1].bar([a.name for a in timed], [a.latency.p50_ms for a in timed], color="#55A868",
                    yerr=[[0] * len(timed), [a.latency.p90_ms - a.latency.p50_ms for a in timed]], capsize=4)
    axes[1].set_title("host latency p50 ms (bar to p90)")
    scored = [a for a in report.artifacts if a.accuracy and a.accuracy.sqnr_db is not None]
    axes[2].bar([a.name for a in scored], [a.accuracy.sqnr_db for a in scored], color="#C44E52")
    axes[2].set_title("SQNR vs float reference (dB)")
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    uris.append(figure_data_uri(fig))
    return uris


def render_html(report: Report) -> str:
    """A single self-contained HTML page (plots embedded as PNG data URIs)."""
    images = "".join(f'<img alt="plots" src="{uri}">' for uri in _plots(report))
    body = html.escape(render_markdown(report))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>edgekit report</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}pre{white-space:pre-wrap;"
        "background:#f6f8fa;padding:1em}img{max-width:100%}</style></head><body>"
        f"<h1>edgekit report</h1>{images}<pre>{body}</pre></body></html>\n"
    )
