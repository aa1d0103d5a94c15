"""Merge MatMul + Add into Gemm where that is legal.

Legal when the MatMul's first input is rank 2 (static shape known), its second input is a
constant [K, N] matrix, the Add's other input is a constant broadcastable to [M, N], and the
MatMul output feeds only that Add.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from edgekit.onnx.fusion.report import FusedGroup
from edgekit.onnx.graph import (
    constant_value,
    consumers,
    graph_output_names,
    initializer_map,
    single_reader,
    static_shapes,
)

PASS = "fuse_matmul_add"


def run(model: onnx.ModelProto) -> list[FusedGroup]:
    graph = model.graph
    shapes = static_shapes(model)
    groups = []
    for matmul in [n for n in graph.node if n.op_type == "MatMul"]:
        inits = initializer_map(graph)
        add = single_reader(consumers(graph), matmul.output[0], graph_output_names(graph))
        if add is None or add.op_type != "Add":
            continue
        a_shape = shapes.get(matmul.input[0])
        weight = constant_value(graph, matmul.input[1], inits)
        if a_shape is None or len(a_shape) != 2 or weight is None or weight.ndim != 2:
            continue
        other = add.input[1] if add.input[0] == matmul.output[0] else add.input[0]
        bias = constant_value(graph, other, inits)
        if bias is None or bias.ndim > 2:
            continue
        try:
            if np.broadcast_shapes(bias.shape, (a_shape[0], weight.shape[1])) != (a_shape[0], weight.shape[1]):
                continue
        except ValueError:
            continue
        gemm = helper.make_node(
            "Gemm", [matmul.input[0], matmul.input[1], other], [add.output[0]], name=f"{matmul.name}_gemm"
        )
        index = list(graph.node).index(matmul)
        graph.node.remove(matmul)
        graph.node.remove(add)
        graph.node.insert(index, gemm)
        groups.append(FusedGroup(PASS, (matmul.name, add.name), f"Gemm {gemm.name!r}"))
    return groups
