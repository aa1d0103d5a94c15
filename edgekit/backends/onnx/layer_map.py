"""The per-layer precision map of a QDQ model built by the ONNX precision ladder, and its MACs.

A conv/matmul/gemm is W8A8, W8A16, W16A8, W16A16 (weights x activation bits), WfA8/WfA16 (float
weights) or float (float activations); only W8A8 runs in 8-bit integer arithmetic. A conv/matmul
split by channel groups (`channel_groups`) is one row per group, with its share of the MACs.
"""

from __future__ import annotations

from typing import Callable, Mapping

import onnx

from edgekit.backends.onnx.channel_groups import SEP
from edgekit.backends.onnx.inspect import COMPUTE, _Graph, _macs


def conv_macs(model: onnx.ModelProto) -> dict[str, int]:
    """Conv/matmul/gemm node name -> MACs per inference (an unknown dim, e.g. a dynamic batch,
    counts as 1). `model`: the INT8 build (16-bit contrib Q/DQ stop shape inference)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for value in probe.graph.input:
        for dim in value.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value") or dim.dim_value <= 0:
                dim.dim_value = 1
    base = _Graph(onnx.shape_inference.infer_shapes(probe).graph)
    return {n.name: _macs(n, base) for n in model.graph.node if n.op_type in COMPUTE}


def layer_rows(model: bytes, macs: Mapping[str, int], input_unit: Callable,
               sensitivity: Mapping[str, float]) -> list[dict]:
    """Per conv/matmul/gemm of `model`: layer, op, precision (see the module), MACs (`macs`, from
    `conv_macs` of the INT8 build), its input unit (`input_unit(node, made)`) and that unit's
    sensitivity."""
    graph = onnx.load_from_string(model).graph
    made = {out: n for n in graph.node for out in n.output}
    types = {init.name: init.data_type for init in graph.initializer}
    share = _group_shares(graph)
    rows = []
    for node in graph.node:
        if node.op_type not in COMPUTE:
            continue
        original, part = share.get(node.name, (node.name, 1.0))
        dq = made.get(node.input[0])
        bits = types.get(dq.input[2]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        activations = {2: "A8", 3: "A8", 4: "A16", 5: "A16"}.get(bits)
        precision = "float" if activations is None else f"{_weight_bits(node, made, types)}{activations}"
        unit = input_unit(node, made)
        rows.append({"layer": node.name, "op": node.op_type, "precision": precision,
                     "macs": round(macs.get(original, 0) * part), "unit": unit,
                     "sensitivity": None if unit is None else sensitivity.get(unit)})
    return rows


def _group_shares(graph: onnx.GraphProto) -> dict[str, tuple[str, float]]:
    """Channel-group node -> (the conv/matmul it was split from, its share of the input channels)."""
    dims = {init.name: init.dims for init in graph.initializer}
    counts = {n.name: dims[f"{n.name}_channels"][0] for n in graph.node
              if SEP in n.name and f"{n.name}_channels" in dims}
    totals: dict[str, int] = {}
    for name, count in counts.items():
        totals[name.split(SEP)[0]] = totals.get(name.split(SEP)[0], 0) + count
    return {name: (name.split(SEP)[0], count / totals[name.split(SEP)[0]]) for name, count in counts.items()}


def _weight_bits(node, made, types) -> str:
    """W8, W16 or Wf: how a conv/matmul's constant weights are stored (W8 without any)."""
    for name in node.input[1:2]:
        source = made.get(name)
        if source is not None and source.op_type == "DequantizeLinear" and source.input[0] in types:
            return "W16" if types[source.input[0]] in (4, 5) else "W8"
        if source is None and types.get(name) in (1, 10, 16):
            return "Wf"
    return "W8"
