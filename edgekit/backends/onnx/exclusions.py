"""Nodes INT8 (QDQ) quantization leaves in float by default, each with its reason.

`auto_excluded(graph, per_channel)` -> {node name: reason}:
- when weights are per-channel, the nodes onnxruntime's per-channel bias quantization breaks on:
  grouped ConvTranspose, and Gemm with a bias that is not 1-D (per row; fusion makes [1, N] 1-D).
- a Concat that writes a graph output: one INT8 scale across a detector head that concatenates
  box coordinates in pixels (0-320) with class probabilities (0-1) leaves the probabilities two
  levels (0 or 1.26). The parts keep their own quantized ranges and are concatenated in float
  (no arithmetic; the outputs are float anyway).
- the statistics of a variance computed as E[x^2] - E[x]^2 (LayerNorm as TF, JAX and Flax export
  it): the two terms are nearly equal, so the INT8 rounding of each is larger than their
  difference and the normalization divides by noise (magika's classifier: top-1 agreement with
  float 0.058 on real files, 0.94 with this rule). From the Reduce nodes to the reciprocal
  standard deviation (times gamma) stays float; the normalization, (x - mean) * that, is quantized.
- a magnitude sqrt(a^2 + b^2) of a linear transform (an STFT computed as a Conv, as PyTorch
  audio front ends export it): the squares double the dynamic range in dB, and INT8 rounds the
  quiet bins to zero (silero-vad: speech-decision agreement with float 0.84, 0.95 with this rule).
  The Conv/MatMul, the shape ops after it, the squares, their sum and the Sqrt stay float.
"""

from __future__ import annotations

import onnx

from edgekit.backends.onnx.graph import attribute, constant_value, consumers, initializer_map, producers

PER_CHANNEL_UNSUPPORTED = "grouped ConvTranspose: no per-channel QDQ in onnxruntime"
OUTPUT_CONCAT = "Concat of a graph output: its parts (e.g. box pixels and class scores) keep their own scales"
VARIANCE = "variance as E[x^2] - E[x]^2: INT8 rounding of the two terms exceeds their difference"
MAGNITUDE = "magnitude sqrt(a^2 + b^2) of a linear transform (an STFT): INT8 rounds its quiet bins to zero"
SHAPE_OPS = {"Slice", "Cast", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Gather", "Split", "Identity"}
LINEAR = {"Conv", "MatMul", "Gemm"}
REDUCE = {"ReduceSum", "ReduceMean"}
MAX_STATISTIC_NODES = 24  # a variance subgraph is small; a walk past this is not one


def auto_excluded(graph: onnx.GraphProto, per_channel: bool) -> dict[str, str]:
    outputs = {value.name for value in graph.output}
    dims = {init.name: list(init.dims) for init in graph.initializer}
    excluded = {}
    for node in graph.node:
        if per_channel and node.op_type == "ConvTranspose" and attribute(node, "group", 1) > 1:
            excluded[node.name] = PER_CHANNEL_UNSUPPORTED
        elif per_channel and node.op_type == "Gemm" and len(node.input) > 2 and len(dims.get(node.input[2], [0])) != 1:
            excluded[node.name] = f"Gemm bias {dims[node.input[2]]} is not 1-D: no per-channel QDQ in onnxruntime"
        elif node.op_type == "Concat" and outputs.intersection(node.output):
            excluded[node.name] = OUTPUT_CONCAT
    for name in variance_statistics(graph):
        excluded.setdefault(name, VARIANCE)
    for name in magnitudes(graph):
        excluded.setdefault(name, MAGNITUDE)
    return excluded


def _square_of(node: onnx.NodeProto | None, graph, inits) -> str | None:
    """The tensor `node` squares (Mul(t, t) or Pow(t, 2)), else None."""
    if node is None:
        return None
    if node.op_type == "Mul" and len(node.input) == 2 and node.input[0] == node.input[1]:
        return node.input[0]
    if node.op_type == "Pow":
        exponent = constant_value(graph, node.input[1], inits)
        if exponent is not None and exponent.size == 1 and float(exponent.reshape(-1)[0]) == 2.0:
            return node.input[0]
    return None


def variance_statistics(graph: onnx.GraphProto) -> list[str]:
    """Names of the nodes that compute E[x^2] - E[x]^2 and what follows from it alone (see module)."""
    made, users, inits = producers(graph), consumers(graph), initializer_map(graph)
    found: list[str] = []
    for node in graph.node:
        if node.op_type != "Sub" or _square_of(made.get(node.input[1]), graph, inits) is None:
            continue
        upstream = _statistics_upstream(node, made, graph, inits)
        if upstream is None:
            continue
        chosen = upstream | _statistics_downstream(node, users, made, inits, upstream)
        found += [n.name for n in graph.node if n.name in chosen and n.name not in found]
    return found


def _statistics_upstream(sub: onnx.NodeProto, made, graph, inits) -> set[str] | None:
    """The Sub and its ancestors up to Reduce nodes (and the square a Reduce reads); None unless
    both of its terms come from a Reduce within MAX_STATISTIC_NODES nodes."""
    chosen, reduces, stack = {sub.name}, 0, [made.get(name) for name in sub.input]
    while stack:
        node = stack.pop()
        if node is None:
            return None  # reached a graph input without a Reduce
        if node.name in chosen:
            continue
        chosen.add(node.name)
        if len(chosen) > MAX_STATISTIC_NODES:
            return None
        if node.op_type in REDUCE:
            reduces += 1
            square = made.get(node.input[0])
            if _square_of(square, graph, inits) is not None:
                chosen.add(square.name)
            continue
        stack += [made.get(name) for name in node.input if name and name not in inits]
    return chosen if reduces >= 2 else None


def _statistics_downstream(sub: onnx.NodeProto, users, made, inits, upstream: set[str]) -> set[str]:
    """Nodes after the Sub whose every non-constant input comes from the statistics."""
    chosen, frontier = {sub.name}, [sub]
    while frontier and len(chosen) < MAX_STATISTIC_NODES:
        node = frontier.pop()
        for user in (u for out in node.output for u in users.get(out, ())):
            inputs = [name for name in user.input if name and name not in inits and name in made]
            if user.name not in chosen and all(made[name].name in chosen or made[name].op_type == "Constant"
                                               for name in inputs):  # fmt: skip
                chosen.add(user.name)
                frontier.append(user)
    return chosen - upstream | {sub.name}


def magnitudes(graph: onnx.GraphProto) -> list[str]:
    """Names of the nodes of every Sqrt(Add(a^2, b^2)) and of the linear op that a and b come
    from through shape ops (see the module docstring)."""
    made, inits = producers(graph), initializer_map(graph)
    found: list[str] = []
    for node in graph.node:
        total = made.get(node.input[0]) if node.op_type == "Sqrt" else None
        if total is None or total.op_type != "Add":
            continue
        squares = [made.get(name) for name in total.input]
        roots = [_square_of(square, graph, inits) for square in squares]
        if None in roots:
            continue
        chain = [node.name, total.name, *(square.name for square in squares)]
        for root in roots:
            source = made.get(root)
            while source is not None and source.op_type in SHAPE_OPS:
                chain.append(source.name)
                source = made.get(source.input[0])
            if source is not None and source.op_type in LINEAR:
                chain.append(source.name)
        found += [name for name in dict.fromkeys(chain) if name not in found]
    return found
