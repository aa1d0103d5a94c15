"""Fixed input shapes for the ONNX backend: pin the dims, then fold what became constant."""

from __future__ import annotations

from typing import Mapping, Sequence

from edgekit.backends.onnx.fusion.constants import fold_constants
from edgekit.sources.onnx_load import pin_input_shapes


def fix_input_shapes(model, shapes: Mapping[str, Sequence[int]] | None = None, *, batch: int = 1):
    """`pin_input_shapes` (batch default 1), then fold the shape subgraphs that became constant;
    (model, record) where record["folded"] lists the folded groups."""
    model, record = pin_input_shapes(model, shapes, batch=batch)
    if not record["fixed_inputs"]:
        return model, {**record, "folded": []}
    model, groups = fold_constants(model)
    return model, {**record, "folded": [g.to_dict() for g in groups]}
