"""Merge MatMul + Add into Gemm where that is legal, and give every Gemm a 1-D bias.

Legal when the MatMul's first input is rank 2 (static shape known), its second input is a
constant [K, N] matrix, the Add's other input is a constant that is the same for every row
([N], [1, N], [1, 1] or a scalar), and the MatMul output feeds only that Add. The Gemm's bias
is always written as [N]: tf2onnx exports a Keras Dense bias as [1, N], and onnxruntime's
per-channel QDQ fails on a 2-D Gemm bias ("truth value of an array ... is ambiguous"). A per-row
bias ([M, N], M > 1) is not a per-channel bias: that MatMul + Add stays as it is. Gemm nodes of
the source model with such a broadcast 2-D (or scalar) bias get the same [N] bias.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from edgekit.backends.onnx.fusion.report import FusedGroup
from edgekit.backends.onnx.graph import (
    add_initializer,
    attribute,
    bias_vector,
    constant_value,
    consumers,
    graph_output_names,
    initializer_map,
    single_reader,
    static_shapes,
)

PASS = "fuse_matmul_add"


def _bias_input(graph, name: str, bias: np.ndarray, vector: np.ndarray, owner: str) -> str:
    """`name` itself when it already is the [N] vector, else a new initializer holding it."""
    if bias.shape == vector.shape:
        return name
    return add_initializer(graph, f"{owner}_bias", vector.astype(bias.dtype))


def _fuse(graph, matmul, shapes, inits) -> FusedGroup | None:
    add = single_reader(consumers(graph), matmul.output[0], graph_output_names(graph))
    if add is None or add.op_type != "Add":
        return None
    a_shape = shapes.get(matmul.input[0])
    weight = constant_value(graph, matmul.input[1], inits)
    if a_shape is None or len(a_shape) != 2 or weight is None or weight.ndim != 2:
        return None
    other = add.input[1] if add.input[0] == matmul.output[0] else add.input[0]
    bias = constant_value(graph, other, inits)
    vector = None if bias is None else bias_vector(bias, weight.shape[1])
    if vector is None:
        return None
    name = f"{matmul.name}_gemm"
    c = _bias_input(graph, other, bias, vector, name)
    gemm = helper.make_node("Gemm", [matmul.input[0], matmul.input[1], c], [add.output[0]], name=name)
    index = list(graph.node).index(matmul)
    graph.node.remove(matmul)
    graph.node.remove(add)
    graph.node.insert(index, gemm)
    return FusedGroup(PASS, (matmul.name, add.name), f"Gemm {gemm.name!r}")


def _flatten_bias(graph, gemm, inits) -> FusedGroup | None:
    """A source Gemm's broadcast bias ([1, N], [1, 1], scalar) rewritten as [N]."""
    if len(gemm.input) < 3 or not gemm.input[2]:
        return None
    weight, bias = constant_value(graph, gemm.input[1], inits), constant_value(graph, gemm.input[2], inits)
    if weight is None or bias is None or weight.ndim != 2:
        return None
    n = weight.shape[0] if attribute(gemm, "transB", 0) else weight.shape[1]
    vector = bias_vector(bias, n)
    if vector is None or bias.shape == vector.shape:
        return None
    gemm.input[2] = _bias_input(graph, gemm.input[2], bias, vector, gemm.name)
    return FusedGroup(PASS, (gemm.name,), f"Gemm {gemm.name!r} bias {list(bias.shape)} -> [{n}]")


def run(model: onnx.ModelProto) -> list[FusedGroup]:
    graph = model.graph
    shapes = static_shapes(model)
    groups = []
    for node in [n for n in graph.node if n.op_type in ("MatMul", "Gemm")]:
        inits = initializer_map(graph)
        group = _fuse(graph, node, shapes, inits) if node.op_type == "MatMul" else _flatten_bias(graph, node, inits)
        if group is not None:
            groups.append(group)
    return groups
