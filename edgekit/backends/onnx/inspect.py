"""Read an ONNX artifact: op counts, conv/matmul arithmetic and MACs, quantized vs float ops.

QDQ models run an op in integer arithmetic when its inputs come from DequantizeLinear (the
runtime fuses DQ -> op -> Q); the dtype of a DQ's input is the arithmetic's dtype. Subgraphs of
If/Loop/Scan are walked too, so a model whose ops all sit under an If, which the quantizer leaves
float, is seen as float.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from edgekit.validate.compression import prod as _prod

COMPUTE = {"Conv", "ConvTranspose", "MatMul", "Gemm", "ConvInteger", "MatMulInteger", "QLinearConv",
           "QLinearMatMul"}
WEIGHT_INPUT = {"QLinearConv": 3, "QLinearMatMul": 3}
DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 10: "float16",
          11: "float64", 16: "bfloat16"}
INT = {"int8": "int8", "uint8": "int8", "int16": "int16", "uint16": "int16"}
CONVERSIONS = {"QuantizeLinear", "DequantizeLinear"}


class _Graph:
    """Types, shapes and producers of one graph, falling back to the enclosing graph's."""

    def __init__(self, graph, outer: "_Graph | None" = None):
        self.outer, self.types, self.producer = outer, {}, {}
        for value in list(graph.input) + list(graph.output) + list(graph.value_info):
            t = value.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else 0 for d in t.shape.dim] if t.HasField("shape") else None
            self.types[value.name] = (DTYPES.get(t.elem_type, "other"), dims)
        for init in graph.initializer:
            self.types[init.name] = (DTYPES.get(init.data_type, "other"), list(init.dims))
        for node in graph.node:
            for name in node.output:
                self.producer[name] = node

    def type(self, name: str):
        found = self.types.get(name)
        return found if found is not None or self.outer is None else self.outer.type(name)

    def source(self, name: str):
        """The node producing `name` (this graph or an enclosing one)."""
        node = self.producer.get(name)
        return node if node is not None or self.outer is None else self.outer.source(name)

    def data(self, name: str):
        """(dtype, dims) of what `name` carries before dequantization."""
        node = self.source(name)
        if node is not None and node.op_type == "DequantizeLinear":
            dtype, _ = self.type(node.input[0]) or ("other", None)
            _, dims = self.type(name) or (None, None)
            return dtype, dims or (self.type(node.input[0]) or (None, None))[1]
        return self.type(name) or ("other", None)


def _macs(node, g: _Graph) -> int:
    out = (g.type(node.output[0]) or (None, None))[1]
    w_index = WEIGHT_INPUT.get(node.op_type, 1)
    if len(node.input) <= w_index:
        return 0
    a, w = g.data(node.input[0])[1], g.data(node.input[w_index])[1]
    if not out or not w or not a or 0 in out or 0 in w:
        return 0
    if node.op_type in ("Conv", "ConvInteger", "QLinearConv"):
        return _prod(out) * _prod(w[1:])
    if node.op_type == "ConvTranspose":
        return _prod(a) * _prod(w[1:])
    if node.op_type == "Gemm":
        trans = any(attr.name == "transA" and attr.i for attr in node.attribute)
        return _prod(out) * (a[0] if trans else a[-1])
    return _prod(out) * a[-1]


def _classify(node, g: _Graph) -> tuple[str, str]:
    """(arithmetic class, 'act/weight' dtypes) of a compute node."""
    act = g.data(node.input[0])[0]
    weights = g.data(node.input[WEIGHT_INPUT.get(node.op_type, 1)])[0] if len(node.input) > 1 else "none"
    if act in INT:
        return INT[act], f"{act}/{weights}"
    if weights in INT:
        return "hybrid", f"{act}/{weights}"
    return ("float16" if act == "float16" else "float32"), f"{act}/{weights}"


def _walk(graph, outer, compute, dtypes, kinds, named=None) -> None:
    g = _Graph(graph, outer)
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _walk(sub, g, compute, dtypes, kinds, named)
        if node.op_type in CONVERSIONS:
            kinds.append("conversion")
        elif node.op_type in COMPUTE:
            cls, pair = _classify(node, g)
            compute.append((cls, _macs(node, g)))
            if named is not None:
                named.append((node.name, node.op_type, cls, compute[-1][1]))
            dtypes[pair] += 1
            kinds.append("quantized" if cls in ("int8", "int16") else "hybrid" if cls == "hybrid" else "float")
        elif node.input and (g.source(node.input[0]) is not None and g.source(node.input[0]).op_type
                             == "DequantizeLinear"):
            kinds.append("quantized")
        elif node.output and (g.type(node.output[0]) or ("other",))[0] in ("float32", "float16"):
            kinds.append("float")
        else:
            kinds.append("other")


def _load(path: str | Path):
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    try:
        return onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - shapes only refine MAC counts; op kinds need none
        return model


def compute_nodes(path: str | Path) -> list[tuple[str, str, str, int]]:
    """(node name, op type, arithmetic class, MACs) of every conv/matmul, subgraphs included;
    class: int8, int16, hybrid, float16 or float32 (see the module docstring)."""
    named: list = []
    _walk(_load(path).graph, None, [], Counter(), [], named)
    return named


def inspect_onnx(path: str | Path) -> tuple[dict, dict, dict]:
    """(op counts of the main graph, {'act/weight' dtypes: conv/matmul count}, compression summary)."""
    from edgekit.validate.compression import summarize

    model = _load(path)
    compute, dtypes, kinds = [], Counter(), []
    _walk(model.graph, None, compute, dtypes, kinds)
    counts = dict(sorted(Counter(node.op_type for node in model.graph.node).items()))
    return counts, dict(sorted(dtypes.items())), summarize(compute, kinds)
