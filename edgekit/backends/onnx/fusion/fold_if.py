"""Fold an `If` whose condition is known into the branch it takes, and count what stays in control flow.

onnxruntime quantizes nothing inside If/Loop/Scan bodies, so a model that keeps its network in
`If(sr == 16000)` branches (silero-vad) would stay float. A condition is known when it follows
from constants and from inputs that every calibration sample holds at the same value
(`HeldInputs`, found by `held_inputs`); the taken branch's nodes and initializers then replace
the If, and nested Ifs whose conditions became known (shape checks, once shapes are fixed) fold
in turn. The report names the inputs the fold relies on, e.g. "sr == 16000 in all 40
calibration samples": the artifact is only valid for those values. Not folded: a branch whose
names clash with the outer graph, or one with sparse initializers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgekit.backends.onnx.fusion.constants import fold_node
from edgekit.backends.onnx.fusion.report import FusedGroup
from edgekit.backends.onnx.graph import attribute, initializer_map, static_shapes_of

PASS = "fold_if"
MAX_HELD_ELEMENTS = 16  # only small inputs (a sample rate, a flag) are compared across samples
CONTROL_FLOW = ("If", "Loop", "Scan")


@dataclass(frozen=True)
class HeldInputs:
    """Inputs whose value is identical in all `samples` calibration samples (name -> value)."""

    values: Mapping[str, np.ndarray] = field(default_factory=dict)
    samples: int = 0


def held_inputs(model: onnx.ModelProto, samples: Iterable[Mapping[str, np.ndarray]]) -> HeldInputs:
    """The small inputs (at most 16 elements) of `model` that keep one value in every sample."""
    inits = {init.name for init in model.graph.initializer}
    candidates = {i.name for i in model.graph.input if i.name not in inits and _small(i)}
    values: dict[str, np.ndarray] = {}
    count = 0
    for sample in samples:
        if not candidates:
            return HeldInputs()
        for name in list(candidates):
            value = np.asarray(sample[name])
            if count == 0:
                values[name] = value
            elif value.shape != values[name].shape or not np.array_equal(value, values[name]):
                candidates.discard(name)
                values.pop(name)
        count += 1
    return HeldInputs(values, count)


def _small(value: onnx.ValueInfoProto) -> bool:
    dims = value.type.tensor_type.shape.dim
    if not all(d.HasField("dim_value") for d in dims):
        return False
    return int(np.prod([d.dim_value for d in dims])) <= MAX_HELD_ELEMENTS


def has_control_flow(graph: onnx.GraphProto) -> bool:
    return any(node.op_type in CONTROL_FLOW for node in graph.node)


def ops_in_control_flow(graph: onnx.GraphProto) -> int:
    """Nodes (Constant nodes aside) inside the bodies of the graph's If/Loop/Scan nodes, nested too."""
    return sum(_count(sub) for node in graph.node for sub in _subgraphs(node))


def _count(graph: onnx.GraphProto) -> int:
    own = sum(1 for node in graph.node if node.op_type != "Constant")
    return own + sum(_count(sub) for node in graph.node for sub in _subgraphs(node))


def _subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    found = []
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            found.append(attr.g)
        elif attr.type == onnx.AttributeProto.GRAPHS:
            found.extend(attr.graphs)
    return found


def _defined(graph: onnx.GraphProto, skip: onnx.NodeProto | None = None) -> set[str]:
    """Every value name a graph and its subgraphs define (the subgraphs of `skip` left out)."""
    names = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    for node in graph.node:
        names.update(out for out in node.output if out)
        if node is not skip:
            for sub in _subgraphs(node):
                names |= _defined(sub)
    return names


def _cone(graph: onnx.GraphProto, name: str) -> list[onnx.NodeProto]:
    """The nodes of `graph` that `name` is computed from, in graph order."""
    made_by = {out: i for i, node in enumerate(graph.node) for out in node.output if out}
    found, stack = set(), [name]
    while stack:
        index = made_by.get(stack.pop())
        if index is not None and index not in found:
            found.add(index)
            stack.extend(n for n in graph.node[index].input if n)
    return [graph.node[i] for i in sorted(found)]


@dataclass
class _Scope:
    """What a graph can see: the initializers of it and the graphs around it, and the held inputs."""

    inits: dict[str, onnx.TensorProto]
    held: HeldInputs
    shapes: dict[str, tuple[int, ...]]
    opset: int

    def inside(self, graph: onnx.GraphProto) -> "_Scope":
        return _Scope({**self.inits, **initializer_map(graph)}, self.held, self.shapes, self.opset)


def _condition(graph, node, scope: _Scope) -> tuple[bool, list[str]] | None:
    """(condition value, held inputs it depends on), or None when it is not known."""
    nodes = _cone(graph, node.input[0])
    reads = {n for inner in nodes for n in inner.input if n} | {node.input[0]}
    values = {n: numpy_helper.to_array(scope.inits[n]) for n in reads if n in scope.inits}
    values.update((n, v) for n, v in scope.held.values.items() if n in reads)
    for inner in nodes:
        result = fold_node(inner, values, scope.shapes, scope.opset)
        if result is not None:
            values.update((out, v) for out, v in zip(inner.output, result) if out)
    value = values.get(node.input[0])
    if value is None or value.size != 1:
        return None
    return bool(value.reshape(())), sorted(n for n in scope.held.values if n in reads)


def _fold_all(graph: onnx.GraphProto, scope: _Scope) -> list[FusedGroup]:
    """Fold every If of `graph` whose condition is known, then look inside the bodies left."""
    groups = []
    for node in [n for n in graph.node if n.op_type == "If"]:
        known = _condition(graph, node, scope)
        if known is None:
            continue
        branch_name = "then_branch" if known[0] else "else_branch"
        branch = attribute(node, branch_name)
        name, size = node.name, len(branch.node)
        if _inline(graph, node, branch):
            groups.append(FusedGroup(PASS, (name,), f"{branch_name} inlined ({size} nodes): "
                                                    f"{_why(known[1], scope.held)}"))
    for node in graph.node:
        for sub in _subgraphs(node):
            groups += _fold_all(sub, scope.inside(sub))
    return groups


def _all_static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Static shapes after shape inference, from every graph; a name two bodies give different shapes is left out."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    shapes: dict[str, tuple[int, ...]] = {}
    clashes = set()
    stack = [inferred.graph]
    while stack:
        graph = stack.pop()
        for name, shape in static_shapes_of(graph).items():
            if shapes.setdefault(name, shape) != shape:
                clashes.add(name)
        stack.extend(sub for node in graph.node for sub in _subgraphs(node))
    return {name: shape for name, shape in shapes.items() if name not in clashes}


def _inline(graph: onnx.GraphProto, node: onnx.NodeProto, branch: onnx.GraphProto) -> bool:
    """Replace `node` by the nodes of `branch` and Identity nodes to its outputs; False on a name clash."""
    clash = (_defined(graph, skip=node) - set(node.output)) & (_defined(branch) - {i.name for i in branch.input})
    if clash or len(branch.sparse_initializer):
        return False
    taken = {n.name for n in graph.node}
    body = []
    for inner in branch.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(inner)
        base, n = copy.name or f"{node.name}/{copy.op_type}", 0
        while copy.name in taken or not copy.name:
            n += 1
            copy.name = f"{base}_{n}"
        taken.add(copy.name)
        body.append(copy)
    body += [helper.make_node("Identity", [src.name], [out], name=f"{node.name}/out{i}")
             for i, (src, out) in enumerate(zip(branch.output, node.output)) if out]
    index = list(graph.node).index(node)
    graph.node.remove(node)
    for offset, inner in enumerate(body):
        graph.node.insert(index + offset, inner)
    graph.initializer.extend(branch.initializer)
    return True


def _why(reads: list[str], held: HeldInputs) -> str:
    if not reads:
        return "its condition is constant"
    shown = ", ".join(f"{n} == {_show(held.values[n])}" for n in reads)
    return f"{shown} in all {held.samples} calibration samples"


def _show(value: np.ndarray) -> str:
    return str(value.item()) if value.size == 1 else str(value.tolist())


def run(model: onnx.ModelProto, held: HeldInputs | None = None) -> list[FusedGroup]:
    """Fold every If whose condition is known, also inside bodies, again while more become known."""
    held = held or HeldInputs()
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    inputs = {i.name for i in model.graph.input}
    groups = []
    while _has_if(model.graph):
        inits = {n: t for n, t in initializer_map(model.graph).items() if n not in inputs}
        scope = _Scope(inits, held, _all_static_shapes(model), opset)
        found = _fold_all(model.graph, scope)
        if not found:
            break
        groups += found
    return groups


def _has_if(graph: onnx.GraphProto) -> bool:
    return any(node.op_type == "If" or any(_has_if(sub) for sub in _subgraphs(node)) for node in graph.node)
