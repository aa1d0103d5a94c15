"""Small helpers over an onnx GraphProto shared by the fusion passes (mutate in place)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable, Iterator

import numpy as np
import onnx
from onnx import numpy_helper


def op_counts(graph: onnx.GraphProto) -> dict[str, int]:
    """Node count by op type, sorted by name."""
    return dict(sorted(Counter(node.op_type for node in graph.node).items()))


def name_nodes(graph: onnx.GraphProto) -> None:
    """Give every unnamed node a unique name `<op_type>_<index>` so reports can cite it."""
    taken = {node.name for node in graph.node if node.name}
    for index, node in enumerate(graph.node):
        if not node.name:
            candidate = f"{node.op_type}_{index}"
            while candidate in taken:
                candidate += "_"
            node.name = candidate
            taken.add(candidate)


def consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    """tensor name -> nodes that read it."""
    users: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            if name:
                users[name].append(node)
    return users


def producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    """tensor name -> node that writes it."""
    return {out: node for node in graph.node for out in node.output if out}


def graph_output_names(graph: onnx.GraphProto) -> set[str]:
    return {out.name for out in graph.output}


def initializer_map(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    return {init.name: init for init in graph.initializer}


def constant_value(graph: onnx.GraphProto, name: str, inits=None) -> np.ndarray | None:
    """The value of `name` if it is an initializer (not also a graph input), else None."""
    inits = initializer_map(graph) if inits is None else inits
    if name in inits and name not in {i.name for i in graph.input}:
        return numpy_helper.to_array(inits[name])
    return None


def add_initializer(graph: onnx.GraphProto, base: str, value: np.ndarray) -> str:
    """Add `value` as a new initializer with a unique name derived from `base`; return the name."""
    taken = {init.name for init in graph.initializer}
    taken.update(out for node in graph.node for out in node.output)
    taken.update(i.name for i in graph.input)
    name, n = base, 0
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    return name


def bias_vector(bias: np.ndarray, n: int) -> np.ndarray | None:
    """The [n] vector a Gemm bias equals when it is the same for every row ([n], [1, n], [1, 1],
    [1] or a scalar); None for a per-row bias ([m, n] or [m, 1] with m > 1). onnxruntime's
    per-channel QDQ indexes a Gemm bias per output channel, so it must be 1-D."""
    if bias.ndim > 2 or any(d != 1 for d in bias.shape[:-1]) or (bias.ndim and bias.shape[-1] not in (1, n)):
        return None
    return np.ascontiguousarray(np.broadcast_to(bias.reshape(-1), (n,)))


def attribute(node: onnx.NodeProto, name: str, default=None):
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def rename_input(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Make every node that reads `old` read `new` instead."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def bypass(graph: onnx.GraphProto, node: onnx.NodeProto, src: str) -> bool:
    """Remove single-output `node` by wiring its readers to `src`; False when that is impossible.

    When the node's output is a graph output, the producer of `src` is renamed instead, which is
    only possible if `src` is produced by a node, is not itself a graph output, and has no other
    readers.
    """
    out = node.output[0]
    if out in graph_output_names(graph):
        prod = producers(graph).get(src)
        if prod is None or src in graph_output_names(graph):
            return False
        if any(n is not node for n in consumers(graph).get(src, [])):
            return False
        prod.output[list(prod.output).index(src)] = out
        graph.node.remove(node)
        return True
    rename_input(graph, out, src)
    graph.node.remove(node)
    return True


def static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Fully static tensor shapes (graph inputs, outputs, value_info) after onnx shape inference."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    return static_shapes_of(inferred.graph)


def static_shapes_of(graph: onnx.GraphProto) -> dict[str, tuple[int, ...]]:
    """Fully static shapes a graph records (inputs, outputs, value_info, initializers)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        tensor = info.type.tensor_type
        if not tensor.HasField("shape"):
            continue
        dims = tensor.shape.dim
        if all(d.HasField("dim_value") and d.dim_value >= 0 for d in dims):
            shapes[info.name] = tuple(int(d.dim_value) for d in dims)
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def float_values(model: onnx.ModelProto, tensors: list[str], feeds: Iterable[dict]) -> Iterator[dict]:
    """Per feed, {tensor: value} of those of `tensors` that `model` computes or the feed holds
    (onnxruntime on CPU, one thread; `model` is not changed)."""
    import onnxruntime

    from edgekit.runtime.onnx import session_options

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    made = {out for node in probe.graph.node for out in node.output}
    names = [t for t in dict.fromkeys(tensors) if t in made]
    del probe.graph.output[:]
    probe.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names)
    session = onnxruntime.InferenceSession(probe.SerializeToString(), session_options(1),
                                           providers=["CPUExecutionProvider"]) if names else None
    inputs = {i.name for i in probe.graph.input}
    wanted = set(tensors)
    for feed in feeds:
        values = dict(zip(names, session.run(names, {k: v for k, v in feed.items() if k in inputs}))) \
            if session is not None else {}
        values.update((k, v) for k, v in feed.items() if k in wanted)
        yield values


def single_reader(users: dict, name: str, outputs: set[str]) -> onnx.NodeProto | None:
    """The only node reading `name`, if exactly one does and `name` is not a graph output."""
    readers = users.get(name, [])
    if len(readers) != 1 or name in outputs:
        return None
    return readers[0]


def prune(graph: onnx.GraphProto) -> None:
    """Drop nodes whose outputs nobody needs and initializers nobody reads."""
    needed = graph_output_names(graph)
    keep = []
    for node in reversed(list(graph.node)):
        if any(out in needed for out in node.output):
            keep.append(node)
            needed.update(name for name in node.input if name)
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    needed.update(_subgraph_inputs(attr.g))
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    used = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(used)


def _subgraph_inputs(graph: onnx.GraphProto) -> set[str]:
    names = set()
    for node in graph.node:
        names.update(name for name in node.input if name)
    return names


def dequantize_params(dq: onnx.NodeProto, inits, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """(scale, zero point) of an initializer's DequantizeLinear as float64 arrays that broadcast
    against its `ndim`-dimensional input (per tensor, or per channel on its axis)."""
    scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float64)
    zero = (numpy_helper.to_array(inits[dq.input[2]]).astype(np.float64) if len(dq.input) > 2 and dq.input[2]
            else np.zeros_like(scale))
    if scale.size > 1:
        shape = [1] * ndim
        shape[attribute(dq, "axis", 1) % ndim] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return scale, zero


def dequantize(dq: onnx.NodeProto, inits) -> np.ndarray:
    """The real values of an initializer's DequantizeLinear (per tensor or per channel on its axis)."""
    q = numpy_helper.to_array(inits[dq.input[0]]).astype(np.float64)
    scale, zero = dequantize_params(dq, inits, q.ndim)
    return (q - zero) * scale
