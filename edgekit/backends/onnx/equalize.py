"""Cross-layer equalization of an ONNX graph's initializers (see edgekit.transforms.equalize).

Runs on the fused FP32 graph (BatchNorm already folded), so the ONNX artifacts and the TensorRT
plan start from it. Producers and consumers: Conv (groups 1, or depthwise with multiplier 1),
Gemm, MatMul with a 2-D initializer weight. In between only positively homogeneous ops: Relu,
LeakyRelu, PRelu, MaxPool, AveragePool, global pooling, Identity, Dropout, zero Pad, and a
Flatten/Reshape of an [N, C, 1, 1] tensor to [N, C].
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import numpy_helper

from edgekit.backends.onnx.graph import attribute, consumers, graph_output_names, initializer_map, static_shapes_of
from edgekit.transforms.equalize import Pair, equalize

PASS_THROUGH = {"Relu", "LeakyRelu", "PRelu", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
                "Identity", "Dropout"}


def _weight_axes(node: onnx.NodeProto, weights: dict) -> tuple[str, int, int] | None:
    """(weight name, output-channel axis, input-channel axis) of a linear node; None if unsupported."""
    if node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in weights:
        w = weights[node.input[1]]
        group = attribute(node, "group", 1)
        if group == 1:
            return node.input[1], 0, 1
        if w.shape[1] == 1 and w.shape[0] == group:  # depthwise, multiplier 1
            return node.input[1], 0, 0
    if node.op_type == "Gemm" and node.input[1] in weights and not attribute(node, "transA", 0):
        trans = bool(attribute(node, "transB", 0))
        return node.input[1], 0 if trans else 1, 1 if trans else 0
    if node.op_type == "MatMul" and node.input[1] in weights and weights[node.input[1]].ndim == 2:
        return node.input[1], 1, 0
    return None


def _bias(node: onnx.NodeProto, weights: dict, channels: int) -> tuple[str | None, bool]:
    """(bias initializer name or None, usable): a bias must be a [channels] initializer."""
    if node.op_type == "MatMul" or len(node.input) < 3 or not node.input[2]:
        return None, True
    name = node.input[2]
    return name, name in weights and weights[name].shape == (channels,)


def scale_transparent(node: onnx.NodeProto, shapes: dict) -> bool:
    """Whether the node carries a positive per-channel scale of its input 0 to its output."""
    if node.op_type in PASS_THROUGH:
        return True
    if node.op_type == "Pad":
        mode = attribute(node, "mode", b"constant")
        return mode in (b"constant", "constant") and (len(node.input) < 3 or not node.input[2])
    if node.op_type in ("Flatten", "Reshape"):
        before, after = shapes.get(node.input[0]), shapes.get(node.output[0])
        return (before is not None and after is not None and len(before) >= 2 and len(after) == 2
                and all(d == 1 for d in before[2:]) and after[1] == before[1])
    return False


def find_pairs(graph: onnx.GraphProto) -> list[Pair]:
    """Every equalizable producer -> consumers pair of the graph."""
    inits = initializer_map(graph)
    weights = {name: numpy_helper.to_array(t) for name, t in inits.items() if t.data_type == onnx.TensorProto.FLOAT}
    uses = Counter(name for node in graph.node for name in node.input)
    users, outputs, shapes = consumers(graph), graph_output_names(graph), static_shapes_of(graph)
    pairs = []
    for node in graph.node:
        axes = _weight_axes(node, weights)
        if axes is None or uses[axes[0]] != 1:
            continue
        channels = weights[axes[0]].shape[axes[1]]
        bias, usable = _bias(node, weights, channels)
        if not usable or (bias is not None and uses[bias] != 1):
            continue
        tensor = node.output[0]
        readers = users.get(tensor, [])
        while len(readers) == 1 and tensor not in outputs and scale_transparent(readers[0], shapes):
            tensor = readers[0].output[0]
            readers = users.get(tensor, [])
        if not readers or tensor in outputs:
            continue
        targets = [_weight_axes(r, weights) if r.input[0] == tensor else None for r in readers]
        if any(t is None or uses[t[0]] != 1 or weights[t[0]].shape[t[2]] != channels for t in targets):
            continue
        pairs.append(Pair(axes[0], axes[1], bias, tuple((t[0], t[2]) for t in targets),
                          label=f"{node.name} -> {', '.join(r.name for r in readers)}"))
    return pairs


def equalize_onnx(model: onnx.ModelProto, mode: str = "auto") -> list[dict]:
    """Equalize the model's pairs in place (mode auto | on | off); one record per pair changed."""
    if mode == "off":
        return []
    pairs = find_pairs(model.graph)
    names = {p.producer for p in pairs} | {p.bias for p in pairs if p.bias} | {c for p in pairs for c, _ in p.consumers}
    inits = initializer_map(model.graph)
    arrays = {name: numpy_helper.to_array(inits[name]) for name in names}
    new, records = equalize(arrays, pairs, mode)
    for name in names:
        if new[name] is not arrays[name]:
            inits[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(new[name]), name))
    return records
