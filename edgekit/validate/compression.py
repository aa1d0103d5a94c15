"""Is it really compressed? The share of conv/matmul MACs per arithmetic, and quantized vs float ops.

Backends list their compute ops as (class, MACs) with class int8, int16, float16, float32 or
hybrid (float activations x int8 weights), and every op's kind (quantized, float, hybrid,
conversion for Quantize/Dequantize, other); `summarize` turns them into the report's fields and
`flags` says when an INT8 artifact quantized nothing or almost nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

ALMOST_NOTHING = 0.1  # an INT8 artifact with < 10% of its MACs (or compute ops) in integer arithmetic


def prod(dims) -> int:
    """Product of tensor dims, unknown (<= 0) dims counted as 1."""
    out = 1
    for d in dims:
        out *= max(int(d), 1)
    return out


def summarize(compute: Sequence[tuple[str, int]], kinds: Sequence[str]) -> dict:
    """{"macs", "mac_share" (by MACs; by op count when no shape is known), "compute_ops", "ops"}."""
    macs = sum(m for _, m in compute)
    weights = Counter()
    for cls, m in compute:
        weights[cls] += m if macs else 1
    total = sum(weights.values())
    return {
        "macs": macs,
        "mac_share": {cls: round(w / total, 4) for cls, w in sorted(weights.items())} if total else {},
        "compute_ops": dict(sorted(Counter(cls for cls, _ in compute).items())),
        "ops": dict(sorted(Counter(kinds).items())),
    }


def integer_share(summary: dict) -> float:
    """The share of compute in int8/int16 arithmetic (0.0 with no compute op and no quantized op)."""
    share = summary.get("mac_share") or {}
    if share:
        return share.get("int8", 0.0) + share.get("int16", 0.0)
    return 1.0 if summary.get("ops", {}).get("quantized") else 0.0


def flags(precision: str, summary: dict | None) -> list[tuple[str, str]]:
    """[(flag, message)] for an artifact: an INT8 build that quantized (almost) nothing."""
    if precision != "int8" or summary is None:
        return []
    share = integer_share(summary)
    if share >= ALMOST_NOTHING:
        return []
    quantized = summary.get("ops", {}).get("quantized", 0)
    what = "nothing" if share == 0 and quantized == 0 else "almost nothing"
    return [("int8_quantized_nothing", f"INT8 artifact quantized {what}: {share:.0%} of conv/matmul MACs in "
             f"integer arithmetic, {quantized} quantized op(s) of {sum(summary.get('ops', {}).values())}")]
