"""Activation smoothing of an ONNX graph (see edgekit.transforms.smooth), from calibration samples.

Runs on the fused FP32 graph after cross-layer equalization, so every artifact starts from it.
A tensor is smoothed when every node reading it is a dense linear layer with constant weights
(Conv with groups 1, MatMul with a 2-D initializer, Gemm) and a per-channel 1/s folds into the
graph before it: walking back from the tensor, 1/s is absorbed by a Conv / Gemm / MatMul output
(its weights and bias), a Mul by a constant or a Div by one, and carried through Add/Sub of a
constant (scaled too), a Mul of two tensors (one side), and the ops that commute with a positive
per-channel scale (`equalize.scale_transparent`: ReLU, pooling, identity, zero padding). Every
other reader of a tensor on that walk must take s into its constant weights (Conv, depthwise
included, MatMul, Gemm) or carry it on; otherwise the tensor is left alone. The float model
computes the same function; the fusion check after it covers the rewrite.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from edgekit.backends.onnx.equalize import scale_transparent
from edgekit.backends.onnx.graph import (add_initializer, attribute, consumers, graph_output_names,
                                         initializer_map, producers, static_shapes)
from edgekit.transforms.smooth import choose

SAMPLES = 32  # calibration samples whose activation rows measure the weights' error
ROWS = 2048  # activation rows (one per position) kept per tensor for the simulation
MAX_TENSORS = 64  # a walk that touches more tensors is given up
FOLDS = {"Conv", "MatMul", "Gemm", "Mul", "Div", "Add", "Sub"}  # producers 1/s goes into, or through


@dataclass
class Edit:
    """One constant input of one node changes: divided ("div") or multiplied ("mul") by s along
    `axis`, laid out for a tensor of `rank` (0: a weight, `axis` indexes the constant itself)."""

    node: onnx.NodeProto
    index: int
    op: str
    axis: int
    rank: int = 0


@dataclass
class Region:
    """What smoothing `tensor` (channel `axis`) changes: the tensors that carry x / s (`chain`:
    those before it, whose INT8 noise reaches it) and the edits."""

    tensor: str
    axis: int
    scaled: set = field(default_factory=set)
    edits: list = field(default_factory=list)
    chain: list = field(default_factory=list)


class _Graph:
    def __init__(self, model: onnx.ModelProto):
        self.graph = model.graph
        self.made, self.users = producers(model.graph), consumers(model.graph)
        self.outputs = graph_output_names(model.graph)
        self.inits = initializer_map(model.graph)
        self.inputs = {i.name for i in model.graph.input}
        self.shapes = static_shapes(model)

    def is_const(self, name: str) -> bool:
        """An initializer that is not also a graph input (its value can be rewritten)."""
        return name in self.inits and name not in self.inputs

    def const(self, name: str) -> np.ndarray | None:
        return numpy_helper.to_array(self.inits[name]) if self.is_const(name) else None

    def rank(self, name: str) -> int | None:
        shape = self.shapes.get(name)
        return None if shape is None else len(shape)

    def weight_axes(self, node: onnx.NodeProto) -> tuple[int, int] | None:
        """(output-channel axis, input-channel axis) of a linear node's constant weight (input 1),
        for a scale on its data input (input 0); None if it has none."""
        if len(node.input) < 2 or not self.is_const(node.input[1]):
            return None
        dims = tuple(self.inits[node.input[1]].dims)
        if node.op_type == "Conv":
            group = attribute(node, "group", 1)
            if group == 1:
                return 0, 1
            return (0, 0) if dims[1] == 1 and dims[0] == group else None
        if node.op_type == "MatMul" and len(dims) == 2:
            return 1, 0
        if node.op_type == "Gemm" and not attribute(node, "transA", 0):
            return (0, 1) if attribute(node, "transB", 0) else (1, 0)
        return None


def _channel_axis(g: _Graph, tensor: str) -> int | None:
    """The channel axis of a tensor read only by dense linear layers (Conv groups 1: 1, MatMul and
    Gemm: the last); None otherwise."""
    rank = g.rank(tensor)
    readers = g.users.get(tensor, [])
    if rank is None or rank < 2 or not readers or tensor in g.outputs:
        return None
    axes = set()
    for node in readers:
        axes_of = g.weight_axes(node) if node.input[0] == tensor and node.op_type in ("Conv", "MatMul", "Gemm") else None
        if axes_of is None or axes_of == (0, 0):  # depthwise: its weights gain nothing from smoothing
            return None
        axes.add(1 if node.op_type == "Conv" else rank - 1)
    return axes.pop() if len(axes) == 1 else None


def plan(g: _Graph, tensor: str, axis: int) -> Region | None:
    """The region smoothing `tensor` changes (see the module docstring); None if 1/s does not fold."""
    region = Region(tensor, axis, {tensor})
    roles: dict[str, str] = {}  # node name -> "absorb" (takes 1/s into a constant) | "carry" (passes it on)
    todo = [tensor]
    while todo:
        t = todo.pop()
        if t in g.outputs or len(region.scaled) > MAX_TENSORS or g.rank(t) is None:
            return None
        node = g.made.get(t)
        if node is None:
            return None
        if roles.get(node.name) != "carry":
            new = _producer(g, node, t, region, roles)
            if new is None:
                return None
            added = _scale(region, new)
            region.chain += added
            todo += added
        for reader in g.users.get(t, []):
            if roles.get(reader.name) == "carry" and reader.output[0] in region.scaled:
                continue
            new = _reader(g, reader, t, region, roles)
            if new is None:
                return None
            todo += _scale(region, new)
    return region


def _scale(region: Region, tensors: list[str]) -> list[str]:
    """Add `tensors` to the region; returns those not in it before (their neighbours are next)."""
    new = [t for t in tensors if t not in region.scaled]
    region.scaled.update(new)
    return new


def _producer(g: _Graph, node, t: str, region: Region, roles: dict) -> list[str] | None:
    """Fold 1/s into the node writing `t`: the tensors that must carry it instead, or None."""
    op, rank = node.op_type, g.rank(t)
    if op in ("Conv", "MatMul", "Gemm") and node.input[0] not in region.scaled:
        axes = g.weight_axes(node)
        if axes is None or (op == "Conv" and region.axis != 1) or (op != "Conv" and region.axis != rank - 1):
            return None
        region.edits.append(Edit(node, 1, "div", axes[0]))
        if len(node.input) > 2 and node.input[2]:
            if not g.is_const(node.input[2]):
                return None
            bias_rank = len(g.inits[node.input[2]].dims)
            region.edits.append(Edit(node, 2, "div", 0) if bias_rank == 1 else Edit(node, 2, "div", region.axis, rank))
        roles[node.name] = "absorb"
        return []
    consts = [i for i, name in enumerate(node.input[:2]) if g.is_const(name)]
    if op in ("Mul", "Div") and len(consts) == 1 and (op == "Mul" or consts == [1]):
        if node.input[1 - consts[0]] in region.scaled:
            return None
        region.edits.append(Edit(node, consts[0], "div" if op == "Mul" else "mul", region.axis, rank))
        roles[node.name] = "absorb"
        return []
    roles[node.name] = "carry"
    if op in ("Add", "Sub") and len(consts) == 1:
        region.edits.append(Edit(node, consts[0], "div", region.axis, rank))
        return [node.input[1 - consts[0]]]
    if op == "Mul" and not consts:  # the side whose producer can take 1/s, the other one unchanged
        if node.input[0] == node.input[1]:
            return None  # a square
        side, other = sorted(node.input[:2], key=lambda x: getattr(g.made.get(x), "op_type", "") not in FOLDS)
        return None if other in region.scaled or g.rank(side) != rank else [side]
    if scale_transparent(node, g.shapes) and g.rank(node.input[0]) == rank:
        return [node.input[0]]
    return None


def _reader(g: _Graph, node, t: str, region: Region, roles: dict) -> list[str] | None:
    """Make `node`, reading the scaled `t`, take s (or carry it on): the tensors newly scaled, or None."""
    if roles.get(node.name) == "absorb" and node.op_type in ("Mul", "Div"):
        return None  # it already takes 1/s for its output: its input must not change
    if node.op_type in ("Conv", "MatMul", "Gemm") and node.input[0] == t:
        axes = g.weight_axes(node)
        if axes is None or region.axis != (1 if node.op_type == "Conv" else g.rank(t) - 1):
            return None
        region.edits.append(Edit(node, 1, "mul", axes[1]))
        return []
    rank = g.rank(node.output[0]) if node.output else None
    if rank is None or rank != g.rank(t) or roles.get(node.name) == "carry":
        return None
    consts = [i for i, name in enumerate(node.input[:2]) if g.is_const(name)]
    if node.op_type in ("Add", "Sub") and len(consts) == 1:
        region.edits.append(Edit(node, consts[0], "div", region.axis, rank))
    elif node.op_type == "Mul" and len(consts) == 1:
        pass
    elif node.op_type == "Div" and consts == [1]:
        pass
    elif node.op_type == "Mul" and not consts:
        if all(x in region.scaled for x in node.input[:2]):
            return None
    elif not (scale_transparent(node, g.shapes) and node.input[0] == t):
        return None
    roles[node.name] = "carry"
    return [node.output[0]]


def apply(g: _Graph, region: Region, scales: np.ndarray) -> None:
    """Rewrite the region's constants for `scales` (shared constants are copied first; a recorded
    shape of a constant that changes is dropped)."""
    uses = Counter(name for node in g.graph.node for name in node.input)
    changed = {edit.node.input[edit.index] for edit in region.edits}
    kept = [v for v in g.graph.value_info if v.name not in changed]
    if len(kept) < len(g.graph.value_info):
        del g.graph.value_info[:]
        g.graph.value_info.extend(kept)
    for edit in region.edits:
        name = edit.node.input[edit.index]
        value = g.const(name)
        shape = [1] * (edit.rank or value.ndim)
        shape[edit.axis] = scales.size
        factor = scales.reshape(shape)
        new = (value / factor if edit.op == "div" else value * factor).astype(value.dtype)
        if uses[name] > 1:
            uses[name] -= 1
            edit.node.input[edit.index] = add_initializer(g.graph, f"{name}_smoothed", new)
            g.inits = initializer_map(g.graph)
        else:
            g.inits[name].CopyFrom(numpy_helper.from_array(new, name))


def _activations(model: onnx.ModelProto, wanted: set[tuple[str, int]], feeds) -> dict:
    """(tensor, channel axis) -> (rows [<= ROWS, C] of its values on the first SAMPLES feeds, each
    channel's min and max over every feed)."""
    import onnxruntime

    from edgekit.runtime.onnx import session_options

    names = sorted({t for t, _ in wanted})
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(onnx.ValueInfoProto(name=t) for t in names)
    session = onnxruntime.InferenceSession(probe.SerializeToString(), session_options(),
                                           providers=["CPUExecutionProvider"])
    rows: dict[tuple, list] = {key: [] for key in wanted}
    low: dict[tuple, np.ndarray] = {}
    high: dict[tuple, np.ndarray] = {}
    for n, feed in enumerate(feeds):
        values = dict(zip(names, session.run(None, feed)))
        for key in wanted:
            value, axis = values[key[0]], key[1]
            x = np.moveaxis(np.asarray(value, np.float32), axis, -1).reshape(-1, value.shape[axis])
            low[key] = np.minimum(low[key], x.min(axis=0)) if key in low else x.min(axis=0)
            high[key] = np.maximum(high[key], x.max(axis=0)) if key in high else x.max(axis=0)
            if n < SAMPLES:  # the same positions in every tensor of the same size
                rows[key].append(x[np.random.default_rng((n, len(x))).choice(len(x), min(ROWS // SAMPLES, len(x)),
                                                                               replace=False)])
    return {key: (np.concatenate(rows[key]), (low[key], high[key])) for key in wanted}


def _readers(g: _Graph, tensor: str) -> list[np.ndarray]:
    """The weights of `tensor`'s readers as [out, C, taps] (their axes: `_Graph.weight_axes`)."""
    out = []
    for node in g.users[tensor]:
        w = np.moveaxis(g.const(node.input[1]), g.weight_axes(node), (0, 1))
        out.append(w.reshape(w.shape[0], w.shape[1], -1))
    return out


def smooth_onnx(model: onnx.ModelProto, calibration_factory, inputs, mode: str = "auto") -> list[dict]:
    """Smooth `model` in place (mode auto | on | off, edgekit.transforms.smooth.choose) from the
    calibration samples (checked against `inputs`: name -> dtype; activation rows from the first
    SAMPLES (32), ranges from all of them); one record per tensor smoothed: tensor, readers,
    alpha, W8A8 error before and after, gain, scales."""
    if mode == "off":
        return []
    from edgekit.backends.onnx.quantize import StreamingReader

    g = _Graph(model)
    regions = {}
    for node in model.graph.node:
        for t in node.output:
            axis = _channel_axis(g, t) if t else None
            region = None if axis is None else plan(g, t, axis)
            if region is not None:
                regions[t] = region
    if not regions:
        return []
    reader = StreamingReader(calibration_factory, inputs)
    feeds = (reader.check(s, i) for i, s in enumerate(calibration_factory()))
    stats = _activations(model, {(t, region.axis) for region in regions.values() for t in [region.tensor, *region.chain]},
                         feeds)
    chosen = []
    for tensor, region in regions.items():
        scales, record = choose([stats[t, region.axis] for t in [tensor, *region.chain]], _readers(g, tensor), mode)
        if scales is not None:
            chosen.append((record["gain"], tensor, scales, record))
    records, touched = [], set()
    for _, tensor, scales, record in sorted(chosen, key=lambda c: -c[0]):  # the largest gain first
        region = regions[tensor]  # the graph's structure does not change, only its constants
        if region.scaled & touched:  # one scale per tensor: the first region keeps it
            continue
        apply(g, region, scales.astype(np.float32))
        touched |= region.scaled
        records.append({"tensor": tensor, "readers": [n.name for n in g.users[tensor]],
                        "region_tensors": len(region.scaled), **record})
    return records
