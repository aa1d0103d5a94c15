"""Read a TFLite flatbuffer: its ops, their fused activations, weight and activation dtypes.

The converter names each op's output tensor after every source op it absorbed
('model/relu/Relu6;model/conv/convolution'), which is how fusions are traced back to layers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from edgekit.validate.compression import prod as _prod

COMPUTE_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL"}
TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8"}


@dataclass(frozen=True)
class TfliteOp:
    index: int
    type: str
    fused_activation: str | None
    output_names: tuple[str, ...]
    input_dtypes: tuple[str, ...]
    output_dtypes: tuple[str, ...]
    macs: int = 0  # multiply-accumulates of a conv/matmul op (0 for other ops)


def read_ops(flatbuffer: bytes) -> list[TfliteOp]:
    """The ops of the first subgraph, in execution order."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    act_names = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    graph = model.subgraphs[0]

    def dtype(index: int) -> str:
        return "none" if index < 0 else TENSOR_TYPES.get(graph.tensors[index].type, "other")

    def shape(index: int) -> list[int]:
        return [] if index < 0 else [int(d) for d in (graph.tensors[index].shape if graph.tensors[index].shape is not None else [])]

    ops = []
    for i, op in enumerate(graph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = op_names.get(builtin, f"OP_{builtin}")
        if name == "CUSTOM" and code.customCode:
            name = f"CUSTOM:{code.customCode.decode()}"
        act = getattr(op.builtinOptions, "fusedActivationFunction", None)
        ops.append(TfliteOp(
            index=i,
            type=name,
            fused_activation=act_names.get(act) if act else None,
            output_names=tuple(graph.tensors[t].name.decode("utf-8", "replace") for t in op.outputs),
            input_dtypes=tuple(dtype(t) for t in op.inputs),
            output_dtypes=tuple(dtype(t) for t in op.outputs),
            macs=_macs(name, [shape(t) for t in op.inputs], [shape(t) for t in op.outputs]),
        ))
    return ops


def _macs(op_type: str, inputs: list[list[int]], outputs: list[list[int]]) -> int:
    """Multiply-accumulates of one conv/matmul op from its tensor shapes (0 when unknown)."""
    if op_type not in COMPUTE_OPS or not outputs or not outputs[0] or len(inputs) < 2:
        return 0
    out = _prod(outputs[0])
    if op_type == "CONV_2D" and len(inputs[1]) == 4:  # weights [Cout, kh, kw, Cin]
        return out * _prod(inputs[1][1:])
    if op_type == "DEPTHWISE_CONV_2D" and len(inputs[1]) == 4:  # [1, kh, kw, Cout]
        return out * inputs[1][1] * inputs[1][2]
    if op_type == "FULLY_CONNECTED" and inputs[1]:  # [units, in]
        return out * inputs[1][-1]
    if op_type == "BATCH_MATMUL" and inputs[0]:
        return out * inputs[0][-1]
    if op_type == "TRANSPOSE_CONV" and len(inputs) > 2 and len(inputs[1]) == 4:  # (shape, weights, input)
        return _prod(inputs[2]) * _prod(inputs[1][:3])
    return 0


ACTIVATION_INPUT = {"TRANSPOSE_CONV": 2}
INT_TYPES = {"int8": "int8", "uint8": "int8", "int16": "int16"}


def compute_class(op: TfliteOp) -> str:
    """What arithmetic a conv/matmul op runs: int8, int16, float16, hybrid (float activations x int8
    weights: dynamic range) or float32."""
    act = op.input_dtypes[ACTIVATION_INPUT.get(op.type, 0)] if op.input_dtypes else "none"
    weights = op.input_dtypes[1] if len(op.input_dtypes) > 1 else "none"
    if act in INT_TYPES:
        return INT_TYPES[act]
    if weights in ("int8", "uint8"):
        return "hybrid"
    return "float16" if act == "float16" else "float32"


def compression(ops: list[TfliteOp]) -> dict:
    """How much of the model really runs quantized (see `edgekit.validate.compression.summarize`)."""
    from edgekit.validate.compression import summarize

    compute = [(compute_class(op), op.macs) for op in ops if op.type in COMPUTE_OPS]
    kinds = []
    for op in ops:
        if op.type in ("QUANTIZE", "DEQUANTIZE"):
            kinds.append("conversion")
        elif op.output_dtypes and op.output_dtypes[0] in INT_TYPES:
            kinds.append("quantized")
        elif op.output_dtypes and op.output_dtypes[0] in ("float32", "float16"):
            kinds.append("hybrid" if op.type in COMPUTE_OPS and compute_class(op) == "hybrid" else "float")
        else:
            kinds.append("other")
    return summarize(compute, kinds)


def op_counts(ops: list[TfliteOp]) -> dict[str, int]:
    return dict(sorted(Counter(op.type for op in ops).items()))


def compute_dtypes(ops: list[TfliteOp]) -> dict[str, int]:
    """How many conv/dense ops run on which (activation, weight) dtypes, e.g. {'int8/int8': 5}."""
    pairs = Counter(
        f"{op.input_dtypes[0]}/{op.input_dtypes[1]}"
        for op in ops if op.type in COMPUTE_OPS and len(op.input_dtypes) > 1
    )
    return dict(sorted(pairs.items()))
