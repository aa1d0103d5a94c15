"""Remove Identity nodes and inference-mode Dropout nodes (their output is their input)."""

from __future__ import annotations

import onnx

from edgekit.backends.onnx.fusion.report import FusedGroup
from edgekit.backends.onnx.graph import bypass, consumers, constant_value, graph_output_names

PASS = "eliminate_identity"


def _removable(graph, node, users) -> bool:
    if node.op_type == "Identity":
        return True
    if node.op_type != "Dropout":
        return False
    mask = node.output[1] if len(node.output) > 1 else ""
    if mask and (users.get(mask) or mask in graph_output_names(graph)):
        return False  # the mask is used
    if len(node.input) >= 3 and node.input[2]:
        training = constant_value(graph, node.input[2])
        if training is None or bool(training):
            return False
    return True


def run(model: onnx.ModelProto) -> list[FusedGroup]:
    graph = model.graph
    groups = []
    for node in list(graph.node):
        users = consumers(graph)
        if not _removable(graph, node, users):
            continue
        name = node.name
        if bypass(graph, node, node.input[0]):
            groups.append(FusedGroup(PASS, (name,), f"removed, readers use {node.input[0]!r}"))
    return groups
