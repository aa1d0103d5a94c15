"""Stage: turn the user's model into a prepared source every target builds from.

TensorFlow models become a fixed-shape SavedModel (`tf_export`); ONNX models are loaded safely
and their dynamic dims fixed. Either way the source knows its inputs/outputs and runs the float
reference on the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edgekit.model.checks import ModelFile
from edgekit.runtime.base import TensorSpec

Reference = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass
class PreparedSource:
    format: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    reference: Reference
    fixed_dims: dict[str, dict] = field(default_factory=dict)
    saved_dir: Optional[Path] = None  # TensorFlow sources
    onnx_path: Optional[Path] = None  # ONNX sources

    @property
    def is_tensorflow(self) -> bool:
        return self.saved_dir is not None


def prepare_source(model_file: ModelFile, workdir: Path, input_shapes: dict, trust: bool,
                   hint=None) -> PreparedSource:
    """Load, check and fix shapes; the float reference runs TensorFlow or onnxruntime.

    hint(name, dims, batch_axis) -> shape | None proposes a shape for an input with unknown
    non-batch dims that `input_shapes` does not name (the calibration samples' shape).
    """
    if model_file.format == "onnx":
        return _prepare_onnx(model_file, input_shapes, hint)
    from edgekit.sources.tensorflow import export_fixed_savedmodel, reference_fn

    exported = export_fixed_savedmodel(model_file, workdir, input_shapes, trust, hint)
    return PreparedSource(model_file.format, exported.inputs, exported.outputs,
                          reference_fn(exported.saved_dir), exported.fixed_dims, saved_dir=exported.saved_dir)


def _prepare_onnx(model_file: ModelFile, input_shapes: dict, hint) -> PreparedSource:
    from edgekit.calibration.shape_hint import batch_axes, fixed_record
    from edgekit.sources.onnx_load import input_specs, known_dims, load_onnx, pin_input_shapes
    from edgekit.runtime.onnx import OnnxRunner

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
