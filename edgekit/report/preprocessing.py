"""The preprocessing section of report.md and of `compress --explain-preprocessing`."""

from __future__ import annotations

from typing import Any

from edgekit.report.outputs import num

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
                  f"(as resolved: {num(probe['as_resolved_accuracy'], pct=True)}); used: {probe['chosen']}.", "",
                  "| candidate | float accuracy | label NLL |", "|---|---:|---:|"]
        lines += [f"| {c['name']} | {num(c['accuracy'], pct=True)} | {num(c.get('nll'))} |" for c in probe["candidates"]]
    check = info.get("float_accuracy")
    if check:
        lines += ["", f"Float accuracy on the validation labels: {num(check['accuracy'], pct=True)} "
                  f"({check['samples']} samples, chance {num(check['chance'], pct=True)} for {check['classes']} classes)."]
    return lines


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in value) + "]"
    return "–" if value is None else str(value)
