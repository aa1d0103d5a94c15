"""Stage: make the converter's layer fusion visible.

Compares the source graph's layers (from the frozen fixed SavedModel) with the TFLite ops: a
TFLite op that absorbed several source layers (Conv2D + BatchNorm + ReLU6 -> one CONV_2D with a
fused RELU6) becomes one fused group. A layer that no TFLite op names (BatchNorm folded into the
preceding conv's weights) is attributed to the group of the op that ran just before it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edgekit.backends.tflite.inspect import TfliteOp
from edgekit.sources.tensorflow import scope_of

PLUMBING = {"Const", "Identity", "NoOp", "Placeholder", "ReadVariableOp", "IdentityN", "Shape",
            "StridedSlice", "Pack", "Reshape", "Squeeze", "ExpandDims"}
KIND_BY_OP = {
    "Conv2D": "Conv2D", "DepthwiseConv2dNative": "DepthwiseConv2D", "MatMul": "Dense",
    "BatchMatMulV2": "MatMul", "Conv2DBackpropInput": "Conv2DTranspose",
    "FusedBatchNormV3": "BatchNorm", "Rsqrt": "BatchNorm", "Relu": "ReLU", "Relu6": "ReLU6",
    "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Softmax": "Softmax", "Mean": "Mean", "MaxPool": "MaxPool",
    "AvgPool": "AvgPool", "AddV2": "Add", "Mul": "Mul", "ConcatV2": "Concat", "Elu": "ELU",
    "LeakyRelu": "LeakyReLU",
}
KIND_PRIORITY = ["Conv2D", "DepthwiseConv2D", "Conv2DTranspose", "Dense", "MatMul", "BatchNorm"]


@dataclass(frozen=True)
class SourceLayer:
    scope: str
    kind: str

    @property
    def label(self) -> str:
        return f"{self.scope.rsplit('/', 1)[-1]} ({self.kind})"


def source_layers(saved_dir: Path) -> tuple[list[SourceLayer], dict[str, int]]:
    """(layers in graph order, compute-op counts by TF op type) of the fixed SavedModel."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from edgekit.sources.tensorflow import SIGNATURE, load_fixed

    loaded = load_fixed(saved_dir)  # keep alive: the signature needs its variables
    nodes = convert_variables_to_constants_v2(loaded.signatures[SIGNATURE]).graph.as_graph_def().node
    ops_by_scope: dict[str, list[str]] = {}
    counts: Counter = Counter()
    for node in nodes:
        if node.op in PLUMBING:
            continue
        counts[node.op] += 1
        scope = scope_of(node.name)
        if scope:
            ops_by_scope.setdefault(scope, []).append(node.op)
    layers = [SourceLayer(scope, _kind(ops)) for scope, ops in ops_by_scope.items()]
    return layers, dict(sorted(counts.items()))


def _kind(op_types: list[str]) -> str:
    kinds = [KIND_BY_OP.get(t, t) for t in op_types]
    for kind in KIND_PRIORITY:
        if kind in kinds:
            return kind
    return kinds[-1]


def fusion_groups(layers: list[SourceLayer], ops: list[TfliteOp]) -> list[dict]:
    """Each TFLite op that absorbed two or more source layers, with those layers in order."""
    position = {layer.scope: i for i, layer in enumerate(layers)}
    owner: dict[str, int] = {}
    for op in ops:
        for output in op.output_names:
            for part in output.split(";"):
                scope = scope_of(part)
                if scope in position and scope not in owner:
                    owner[scope] = op.index
    members: dict[int, list[SourceLayer]] = {}
    current = None
    for layer in layers:
        current = owner.get(layer.scope, current)
        if current is not None:
            members.setdefault(current, []).append(layer)
    groups = []
    for op in ops:
        group = members.get(op.index, [])
        if len(group) >= 2:
            groups.append({
                "tflite_op": op.type,
                "fused_activation": op.fused_activation if op.fused_activation != "NONE" else None,
                "layers": [layer.label for layer in group],
                "summary": " + ".join(layer.kind for layer in group) + f" -> {op.type}"
                + (f" ({op.fused_activation})" if op.fused_activation not in (None, "NONE") else ""),
            })
    return groups
