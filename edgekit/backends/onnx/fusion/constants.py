"""Constant folding: evaluate nodes whose inputs are all known, including shape computations.

A node folds when every input is an initializer or an already-folded tensor, or when it is a
`Shape`/`Size` of a tensor whose shape is fully static after shape inference (this is what turns
the shape subgraphs of exported models into constants once dynamic dims are fixed). Nodes are
evaluated one at a time with onnx's reference evaluator. Not folded: random ops, control flow,
custom domains, QuantizeLinear/DequantizeLinear, and results over `MAX_FOLD_BYTES`.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgekit.backends.onnx.fusion.report import FusedGroup
from edgekit.backends.onnx.graph import graph_output_names, name_nodes, initializer_map, prune, static_shapes

PASS = "fold_constants"
MAX_FOLD_BYTES = 16 << 20  # never materialize a constant bigger than 16 MiB
_NEVER_FOLD = {
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
    "Bernoulli", "If", "Loop", "Scan", "QuantizeLinear", "DequantizeLinear",
}  # fmt: skip


def _evaluate(node: onnx.NodeProto, values: dict[str, np.ndarray], opset: int) -> list[np.ndarray] | None:
    from onnx.reference import ReferenceEvaluator

    inputs = list(dict.fromkeys(name for name in node.input if name))
    clone = onnx.NodeProto()
    clone.CopyFrom(node)
    for i, name in enumerate(node.input):
        if name:
            clone.input[i] = f"in{inputs.index(name)}"
    feeds = {f"in{i}": values[name] for i, name in enumerate(inputs)}
    graph = helper.make_graph(
        [clone],
        "fold",
        [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in feeds.items()],
        [helper.make_tensor_value_info(out, onnx.TensorProto.UNDEFINED, None) for out in node.output if out],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    try:
        results = ReferenceEvaluator(model).run(None, feeds)
    except Exception:  # an op the reference evaluator lacks: leave the node in the graph
        return None
    return [np.asarray(r) for r in results]


def _shape_value(node, shapes) -> np.ndarray | None:
    shape = shapes.get(node.input[0])
    if shape is None:
        return None
    if node.op_type == "Size":
        return np.array(int(np.prod(shape)), dtype=np.int64)
    start = next((a.i for a in node.attribute if a.name == "start"), 0)
    end = next((a.i for a in node.attribute if a.name == "end"), None)
    return np.array(shape[slice(start, end)], dtype=np.int64)


def fold_constants(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[FusedGroup]]:
    """Return (model, groups): a folded copy; one group per constant computed from other nodes."""
    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    name_nodes(clone.graph)
    groups = run(clone)
    return clone, groups


def run(model: onnx.ModelProto) -> list[FusedGroup]:
    graph = model.graph
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    graph_inputs = {i.name for i in graph.input}
    values = {name: numpy_helper.to_array(t) for name, t in initializer_map(graph).items() if name not in graph_inputs}
    shapes = static_shapes(model)
    origin: dict[str, frozenset[str]] = {}  # folded tensor -> names of the nodes that made it
    folded_nodes = []
    outputs = graph_output_names(graph)
    for node in graph.node:
        if any(out in outputs for out in node.output):
            continue
        value_list = fold_node(node, values, shapes, opset)
        if value_list is None:
            continue
        sources = frozenset({node.name}).union(*(origin.get(n, frozenset()) for n in node.input if n))
        for out, value in zip(node.output, value_list):
            if out:
                values[out] = value
                origin[out] = sources
        folded_nodes.append(node)
    if not folded_nodes:
        return []
    folded = {n.name for n in folded_nodes}  # nodes are named by the runner / fold_constants
    remaining = [n for n in graph.node if n.name not in folded]
    needed = {name for n in remaining for name in n.input} | graph_output_names(graph)
    order = {n.name: i for i, n in enumerate(graph.node)}
    op_types = {n.name: n.op_type for n in graph.node}
    groups = []
    for name in sorted(n for n in origin if n in needed):
        graph.initializer.append(numpy_helper.from_array(values[name], name))
        nodes = tuple(sorted(origin[name], key=order.get))
        if {op_types[n] for n in nodes} != {"Constant"}:  # a Constant node turned initializer folds nothing
            groups.append(FusedGroup(PASS, nodes, f"initializer {name!r} {list(values[name].shape)}"))
    del graph.node[:]
    graph.node.extend(remaining)
    prune(graph)
    return groups


def fold_node(node, values, shapes, opset) -> list[np.ndarray] | None:
    """The outputs of `node` when its inputs are in `values` (or it is a Shape/Size of a static
    shape in `shapes`); None when it cannot or must not be folded."""
    if node.domain not in ("", "ai.onnx") or node.op_type in _NEVER_FOLD:
        return None
    if node.op_type == "Constant":
        result = _evaluate(node, values, opset)
    elif node.op_type in ("Shape", "Size") and node.input[0] not in values:
        value = _shape_value(node, shapes)
        result = None if value is None else [value]
    elif all(name in values for name in node.input if name):
        result = _evaluate(node, values, opset)
    else:
        return None
    if result is None or sum(r.nbytes for r in result) > MAX_FOLD_BYTES:
        return None
    return result
