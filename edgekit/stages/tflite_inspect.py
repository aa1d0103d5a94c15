"""Read a TFLite flatbuffer: its ops, their fused activations, weight and activation dtypes.

The converter names each op's output tensor after every source op it absorbed
('model/relu/Relu6;model/conv/convolution'), which is how fusions are traced back to layers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

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
        ))
    return ops


def op_counts(ops: list[TfliteOp]) -> dict[str, int]:
    return dict(sorted(Counter(op.type for op in ops).items()))


def compute_dtypes(ops: list[TfliteOp]) -> dict[str, int]:
    """How many conv/dense ops run on which (activation, weight) dtypes, e.g. {'int8/int8': 5}."""
    pairs = Counter(
        f"{op.input_dtypes[0]}/{op.input_dtypes[1]}"
        for op in ops if op.type in COMPUTE_OPS and len(op.input_dtypes) > 1
    )
    return dict(sorted(pairs.items()))
