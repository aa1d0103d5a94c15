"""The page pieces every report family (compress, debug, bench) renders with: Markdown and HTML
tables, one self-contained HTML page (inline style, plots as data URIs)."""

from __future__ import annotations

import html
from typing import Iterable, Sequence

STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1300px;line-height:1.4}"
    "table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;"
    "padding:3px 8px;text-align:left}th{background:#f0f3f6}img{display:block;margin:1em 0;max-width:100%}"
    "code{background:#f6f8fa;padding:1px 4px}"
)


def md_table(headers: Sequence[str], rows: Iterable[Sequence]) -> list[str]:
    """A Markdown table's lines; cells are str()-ed, '|' escaped and newlines flattened."""
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]


def html_table(headers: Sequence[str], rows: Iterable[Sequence]) -> str:
    """An HTML table; every header and cell is escaped (names come from untrusted models)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image(uri: str | None, alt: str) -> str:
    """An <img> of a data URI (report.plots.figure_data_uri); '' when there is no plot."""
    return f'<img alt="{html.escape(alt)}" src="{uri}">' if uri else ""


def page_html(title: str, parts: Iterable[str], style: str = STYLE) -> str:
    """One self-contained HTML page of already-rendered `parts` (default style: STYLE)."""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")
