"""The preprocessing section of report.md and of `compress --explain-preprocessing`."""

from __future__ import annotations

from typing import Any

SHOWN = ("scale", "offset", "mean", "std", "color", "layout", "resize")


def preprocessing_lines(info: dict[str, Any]) -> list[str]:
    """Markdown lines: each value with its origin, the evidence, the probe's candidates."""
    if not info.get("applies", True):
        return ["Preprocessing: none (array data is fed as stored)."]
    values, origins = info["values"], info["origins"]
    lines = ["| value | used | from |", "|---|---|---|"]
    lines += [f"| {k} | {_show(values.get(k))} | {origins.get(k, 'default')} |" for k in SHOWN]
    if info.get("inside_model"):
        lines += ["", f"Normalization is inside the model: {info['inside_model']}."]
    lines += [f"- {e}" for e in info.get("evidence", []) if not e.startswith("normalization is inside")]
    probe = info.get("probe")
    if probe:
        lines += ["", f"Probe: float top-1 accuracy on {probe['samples']} labelled validation images "
                  f"(as resolved: {_pct(probe['as_resolved_accuracy'])}); used: {probe['chosen']}.", "",
                  "| candidate | float accuracy | label NLL |", "|---|---:|---:|"]
        lines += [f"| {c['name']} | {_pct(c['accuracy'])} | {_nll(c.get('nll'))} |" for c in probe["candidates"]]
    check = info.get("float_accuracy")
    if check:
        lines += ["", f"Float accuracy on the validation labels: {_pct(check['accuracy'])} "
                  f"({check['samples']} samples, chance {_pct(check['chance'])} for {check['classes']} classes)."]
    return lines


def _nll(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _pct(value) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in value) + "]"
    return "–" if value is None else str(value)
