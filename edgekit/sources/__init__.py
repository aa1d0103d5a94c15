"""The registry of model formats in: the only place that maps a format to its loader.

`prepare(model_file, workdir, input_shapes, trust, hint)` loads, checks and fixes shapes with
the format's module (imported on first use) and returns a frozen `PreparedSource`.
"""

from __future__ import annotations

import importlib

from edgekit.errors import ModelError

# model format (edgekit.model.checks) -> ("module:function" preparing it, the forms it gives targets)
_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "savedmodel": ("edgekit.sources.tensorflow:prepare", ("savedmodel", "onnx")),
    "keras": ("edgekit.sources.tensorflow:prepare", ("savedmodel", "onnx")),
    "onnx": ("edgekit.sources.onnx:prepare", ("onnx",)),
    "pt2": ("edgekit.sources.pytorch:prepare", ("onnx",)),          # torch.export archive
    "torch-entry": ("edgekit.sources.pytorch:prepare", ("onnx",)),  # package.module:function
}

FORM_NAMES = {"savedmodel": "a TensorFlow model (SavedModel or .keras)", "onnx": "an ONNX model"}


def register(model_format: str, spec: str, forms: tuple[str, ...]) -> None:
    """Register a model format: "module:function" (called like `prepare`) and the forms it gives."""
    _SOURCES[model_format] = (spec, tuple(forms))


def forms(model_format: str) -> tuple[str, ...]:
    """The forms ("savedmodel", "onnx") a model of this format gives targets."""
    return _SOURCES[model_format][1] if model_format in _SOURCES else ()


def prepare(model_file, workdir, input_shapes: dict, trust: bool, hint=None):
    """The PreparedSource of `model_file` (see edgekit.sources.base).

    hint(name, dims, batch_axis) -> shape | None proposes a shape for an input with unknown
    non-batch dims that `input_shapes` does not name (the calibration samples' shape).
    """
    if model_file.format not in _SOURCES:
        raise ModelError(f"no source for model format {model_file.format!r}", model_file.path)
    module, attr = _SOURCES[model_file.format][0].split(":")
    return getattr(importlib.import_module(module), attr)(model_file, workdir, input_shapes, trust, hint)
