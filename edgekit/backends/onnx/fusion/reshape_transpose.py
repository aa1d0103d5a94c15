"""Remove no-op Reshape/Transpose nodes and cancel or merge back-to-back pairs.

- Transpose with the identity permutation, or Reshape to the shape its input already has: removed.
- Transpose -> Transpose: merged into one Transpose, or both removed when the permutations cancel.
- Reshape -> Reshape (constant target without 0 entries): the first is dropped; both go when the
  second restores the original shape.
Pairs are only touched when the first node's output feeds the second alone.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from edgekit.backends.onnx.fusion.report import FusedGroup
from edgekit.backends.onnx.graph import (
    attribute,
    bypass,
    constant_value,
    consumers,
    graph_output_names,
    single_reader,
    static_shapes,
)

PASS = "cancel_reshape_transpose"


def _perm(node, shapes) -> list[int] | None:
    perm = attribute(node, "perm")
    if perm is not None:
        return list(perm)
    shape = shapes.get(node.input[0])
    return None if shape is None else list(reversed(range(len(shape))))


def _is_noop(node, shapes) -> bool:
    if node.op_type == "Transpose":
        perm = _perm(node, shapes)
        return perm is not None and perm == sorted(perm)
    if node.op_type == "Reshape":
        before, after = shapes.get(node.input[0]), shapes.get(node.output[0])
        return before is not None and before == after
    return False


def _pair(graph, first, second, shapes) -> str | None:
    """Rewrite first -> second; return what it became, or None if not applicable."""
    if first.op_type == "Transpose":
        p1, p2 = _perm(first, shapes), _perm(second, shapes)
        if p1 is None or p2 is None or len(p1) != len(p2):
            return None
        composed = [p1[i] for i in p2]
        second.input[0] = first.input[0]
        for attr in list(second.attribute):
            if attr.name == "perm":
                second.attribute.remove(attr)
        second.attribute.append(helper.make_attribute("perm", composed))
        graph.node.remove(first)
        if composed == sorted(composed) and bypass(graph, second, second.input[0]):
            return "cancelled (identity permutation)"
        return f"Transpose {second.name!r} perm={composed}"
    target = constant_value(graph, second.input[1])
    if target is None or np.any(target == 0):
        return None
    second.input[0] = first.input[0]
    graph.node.remove(first)
    if _is_noop(second, shapes) and bypass(graph, second, second.input[0]):
        return "cancelled (shape restored)"
    return f"Reshape {second.name!r}"


def run(model: onnx.ModelProto) -> list[FusedGroup]:
    graph = model.graph
    shapes = static_shapes(model)
    groups = []
    for node in list(graph.node):
        if node not in graph.node or node.op_type not in ("Transpose", "Reshape"):
            continue
        if _is_noop(node, shapes):
            name = node.name
            if bypass(graph, node, node.input[0]):
                groups.append(FusedGroup(PASS, (name,), "removed (no-op)"))
            continue
        nxt = single_reader(consumers(graph), node.output[0], graph_output_names(graph))
        if nxt is None or nxt.op_type != node.op_type:
            continue
        names = (node.name, nxt.name)
        result = _pair(graph, node, nxt, shapes)
        if result is not None:
            groups.append(FusedGroup(PASS, names, result))
    return groups
