"""ONNX models in: loaded safely (edgekit.sources.onnx_load), dynamic dims fixed (the batch to 1,
others from --input-shape or the calibration samples), the float reference run by onnxruntime."""

from __future__ import annotations

from pathlib import Path

from edgekit.model.checks import ModelFile
from edgekit.runtime.base import TensorSpec
from edgekit.sources.base import PreparedSource


def prepare(model_file: ModelFile, workdir: Path, input_shapes: dict, trust: bool, hint=None) -> PreparedSource:
    """The PreparedSource of an .onnx file (see `edgekit.sources.prepare`)."""
    from edgekit.calibration.shape_hint import batch_axes, fixed_record
    from edgekit.runtime.onnx import OnnxRunner
    from edgekit.sources.onnx_load import input_specs, known_dims, load_onnx, pin_input_shapes

    model = load_onnx(model_file.path)
    before = input_specs(model)
    known = known_dims(before)
    axes = batch_axes(known)
    given, input_shapes = set(input_shapes), dict(input_shapes)
    for name, dims in known.items():
        others = [i for i, d in enumerate(dims) if d is None and i != axes.get(name)]
        if name not in input_shapes and others and hint is not None:
            guess = hint(name, dims, axes.get(name))
            if guess is not None:
                input_shapes[name] = guess
    fixed_model, _ = pin_input_shapes(model, input_shapes)
    after = input_specs(fixed_model)
    runner = OnnxRunner(model_file.path)
    dtypes = {s.name: s.dtype for s in runner.inputs}
    inputs = [TensorSpec(name, tuple(int(d) for d in shape), dtypes[name]) for name, shape in after.items()]
    fixed = {n: fixed_record(_show(before[n]), _show(after[n]), None if n in given else axes.get(n))
             for n in after if before[n] != after[n]}
    return PreparedSource("onnx", inputs, runner.outputs, runner.run, fixed, onnx_path=model_file.path)


def _show(dims) -> str:
    return "x".join(str(d) if isinstance(d, int) and d > 0 else "?" for d in dims)
