"""report.html: the Markdown report's facts plus plots of size, latency and error per artifact."""

from __future__ import annotations

import html

from typing import Optional

import numpy as np

from edgekit.report.markdown import render_markdown
from edgekit.report.outputs import boxes_figure
from edgekit.report.page import STYLE as PAGE_STYLE
from edgekit.report.page import image, page_html
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


# Numbers right-aligned: the compress report's tables are mostly metrics after two name columns.
STYLE = PAGE_STYLE + "td:nth-child(n+3){text-align:right}"


def render_html(report: Report, sample: Optional[dict[str, np.ndarray]] = None) -> str:
    """A single self-contained HTML page: the Markdown report as HTML, with plots (PNG data URIs).

    sample: the first validation inputs; a detector's boxes are drawn on it (float vs each build).
    """
    import markdown

    # Escape first: model paths and layer names come from untrusted files.
    body = markdown.markdown(html.escape(render_markdown(report), quote=False), extensions=["tables"])
    images = "".join(image(uri, "size, latency and SQNR per artifact") for uri in _plots(report))
    images += image(boxes_figure(report, sample), "detections on the first validation image, float vs each build")
    head, _, rest = body.partition("</h1>")
    return page_html("edgekit report", [head, "</h1>", images, rest], STYLE)
