"""Run the fusion passes to a fixed point and report what changed.

`fuse(model)` copies the model, names unnamed nodes, runs every pass in `PASSES` order, repeating
the sequence while any pass still finds work (at most `max_rounds`, default 4), prunes dead
nodes, checks the result with onnx.checker and returns (fused model, FusionReport). `held`
(default none) gives fold_if the inputs the calibration samples hold constant.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import onnx

from edgekit.errors import ConversionError, condense
from edgekit.backends.onnx.fusion import batchnorm, constants, fold_if, identity, matmul_add, reshape_transpose
from edgekit.backends.onnx.fusion.report import FusedGroup, FusionReport
from edgekit.backends.onnx.graph import name_nodes, op_counts, prune

PassFn = Callable[[onnx.ModelProto], list[FusedGroup]]

PASSES: dict[str, PassFn] = {
    identity.PASS: identity.run,
    fold_if.PASS: fold_if.run,
    constants.PASS: constants.run,
    batchnorm.PASS: batchnorm.run,
    matmul_add.PASS: matmul_add.run,
    reshape_transpose.PASS: reshape_transpose.run,
}


def fuse(
    model: onnx.ModelProto, passes: Sequence[str] | None = None, *, max_rounds: int = 4,
    held: fold_if.HeldInputs | None = None,
) -> tuple[onnx.ModelProto, FusionReport]:
    """Return (fused copy, report); `passes` selects a subset of PASSES by name (default: all)."""
    names = list(PASSES) if passes is None else list(passes)
    unknown = [name for name in names if name not in PASSES]
    if unknown:
        raise ValueError(f"unknown fusion passes {unknown}; known: {list(PASSES)}")
    fused = onnx.ModelProto()
    fused.CopyFrom(model)
    name_nodes(fused.graph)
    report = FusionReport(ops_before=op_counts(fused.graph), ops_after={})
    run = {**PASSES, fold_if.PASS: functools.partial(fold_if.run, held=held)}
    for _ in range(max_rounds):
        found = []
        for name in names:
            found.extend(run[name](fused))
        report.groups.extend(found)
        if not found:
            break
    prune(fused.graph)
    try:
        onnx.checker.check_model(fused)
        fused = onnx.shape_inference.infer_shapes(fused, strict_mode=False, data_prop=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ConversionError(f"fusion produced an invalid graph: {condense(err)}") from None
    report.ops_after = op_counts(fused.graph)
    return fused, report
