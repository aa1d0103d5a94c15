"""Measured sensitivity: the end-to-end output error each layer is responsible for.

For every quantizable node two models are built and validated against the float reference:
- `quant_alone`: only this node quantized, every other node in float -> the output noise this
  node causes on its own (catches a layer whose input/output range is blown up by an outlier,
  which per-tensor RMSE/scale hides: the inflated scale makes its own error look small);
- `float_alone`: everything quantized except this node -> how much keeping it in float helps.
Noise is measured as the output noise fraction 10^(-SQNR/10) (0 = identical to float).
The score is max(noise when alone quantized, noise removed when alone float); nodes are ranked
by score, highest first. Both passes stop early at `deadline` (time.monotonic() seconds).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

from edgekit.backends.selective import QuantNode
from edgekit.debug.scoring import Evaluator, noise_fraction

MODES = ("quant_alone", "float_alone")


@dataclass
class NodeSensitivity:
    """One node's measured effect; None where the pass did not reach it (time budget)."""

    node: str
    layer: str
    op_type: str
    index: int
    quant_alone_sqnr_db: Optional[float] = None
    quant_alone_noise: Optional[float] = None
    float_alone_sqnr_db: Optional[float] = None
    float_alone_gain: Optional[float] = None
    score: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def serial(backend, evaluator: Evaluator):
    """Evaluate float-node sets one after another in this process (the default `evaluate_many`)."""
    def evaluate_many(float_sets):
        return [evaluator.accuracy(backend, backend.build(list(s))) for s in float_sets]
    evaluate_many.width = 1
    return evaluate_many


def measure_sensitivity(backend, evaluator: Evaluator, nodes: Sequence[QuantNode] | None = None, *,
                        modes: Sequence[str] = MODES, deadline: float | None = None,
                        on_step=lambda s: None, evaluate_many=None) -> tuple[list[NodeSensitivity], float]:
    """(nodes ranked by score, full-INT8 output noise fraction).

    evaluate_many: maps a list of float-node-id lists to their AccuracyReports, `width` nodes'
    candidates at a time, read before each batch (edgekit.debug.parallel: an executor) [default:
    `serial`, one node at a time]; the deadline is checked between batches."""
    nodes = list(nodes if nodes is not None else backend.nodes())
    evaluate_many = evaluate_many or serial(backend, evaluator)
    all_ids = [n.id for n in nodes]
    baseline = noise_fraction(evaluator.accuracy(backend, backend.build()))
    results = [NodeSensitivity(n.id, n.layer, n.op_type, n.index) for n in nodes]
    start = 0
    while start < len(nodes):
        if deadline is not None and time.monotonic() > deadline:
            break
        width = max(1, getattr(evaluate_many, "width", 1))  # read again: an adaptive one may widen
        on_step(f"sensitivity {start + 1}/{len(nodes)}: {nodes[start].layer}")
        float_sets, slots = [], []
        for node, result in zip(nodes[start:start + width], results[start:start + width]):
            if "quant_alone" in modes and len(nodes) > 1:
                float_sets.append([x for x in all_ids if x != node.id])
                slots.append((result, "quant_alone"))
            if "float_alone" in modes:
                float_sets.append([node.id])
                slots.append((result, "float_alone"))
        for (result, mode), acc in zip(slots, evaluate_many(float_sets)):
            if mode == "quant_alone":
                result.quant_alone_sqnr_db, result.quant_alone_noise = acc.sqnr_db, noise_fraction(acc)
            else:
                result.float_alone_sqnr_db = acc.sqnr_db
                result.float_alone_gain = baseline - noise_fraction(acc)
        for result in results[start:start + width]:
            result.score = max(result.quant_alone_noise or 0.0, result.float_alone_gain or 0.0)
        start += width
    ranked = sorted(results, key=lambda r: (-r.score, r.index))
    return ranked, baseline
