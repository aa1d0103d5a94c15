"""`edgekit debug`: per-layer INT8 error, measured sensitivity, calibration checks, and (with a
budget) the float fallback, for one model and one target, written atomically to OUT.

OUT holds debug.json (schema_version 1), debug.md, debug.html and, with a budget, the chosen
model (model_int8_fallback.tflite / .onnx). A budget that cannot be met raises GateFailed
(exit 10) after OUT is complete.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import edgekit
from edgekit.calibration.checks import calibration_warnings
from edgekit.debug.fallback import raise_if_unmet, run_fallback
from edgekit.debug.scoring import Budget, Evaluator
from edgekit.debug.sensitivity import measure_sensitivity
from edgekit.errors import UsageError
from edgekit.fsutil import atomic_output_dir, naming_user_paths, write_json_atomic, write_text_atomic
from edgekit.model.checks import check_model_path
from edgekit.recipe.schema import Recipe

CULPRIT_SHARE = 0.1  # a culprit's sensitivity is at least this share of the worst layer's
CULPRIT_NOISE = 0.01  # ... and it alone causes/removes at least 1% output noise


def culprits(ranking) -> list[str]:
    """Layers that explain most of the output error (see CULPRIT_SHARE / CULPRIT_NOISE)."""
    top = max((r.score for r in ranking), default=0.0)
    return [r.layer for r in ranking if r.score >= max(CULPRIT_NOISE, CULPRIT_SHARE * top)]


def _document(model_path, target, backend, int8_acc, errors, ranking, warnings, fallback, samples) -> dict:
    score = {r.node: r for r in ranking}
    bad = set(culprits(ranking))
    layers = []
    for error in errors:
        item = error.to_dict()
        sens = score.get(error.node)
        item["sensitivity"] = sens.score if sens else None
        flags = ["explains output error"] if error.layer in bad and sens and sens.layer in bad else []
        if error.scale_outlier:
            flags.append(f"scale outlier (channel range x{error.channel_range_ratio:g})")
        if error.clipped_fraction() > 0.25:
            flags.append("held-out range clipped")
        item["flags"] = flags
        layers.append(item)
    return {
        "schema_version": 1,
        "edgekit_version": edgekit.__version__,
        "model": str(model_path),
        "target": target,
        "samples": samples,
        "int8": int8_acc.model_dump(mode="json") | {"bytes": len(backend.build())},
        "layers": layers,
        "ranking": [r.to_dict() for r in ranking],
        "culprits": [r.layer for r in ranking if r.layer in bad],
        "calibration_warnings": warnings,
        "fallback": fallback.to_dict() if fallback else None,
    }


def run_debug(model_path: str | Path, out: str | Path, recipe: Recipe, *, target: str = "tflite",
              budget: Optional[Budget] = None, max_float_layers: int = 10, time_budget_s: float = 600.0,
              trust_model: bool = False, on_step: Callable[[str], None] = lambda s: None) -> dict:
    """Analyse `model_path` for `target` (tflite | onnx); write OUT; return the document."""
    if target not in ("tflite", "onnx"):
        raise UsageError(f"--target {target}: edgekit debug supports tflite and onnx")
    if recipe.calibration.source is None:
        raise UsageError("edgekit debug needs calibration data: pass --calibration DIR")
    model_file = check_model_path(model_path, trust_model)
    if model_file.format == "onnx" and target == "tflite":
        raise UsageError("an ONNX model can only be debugged with --target onnx", model_path)
    start = time.monotonic()
    with (naming_user_paths(model_file.path), tempfile.TemporaryDirectory(prefix="edgekit-debug-") as work,
          atomic_output_dir(out) as stage):
        on_step("loading model")
        backend, data, reference = _setup(model_file, recipe, target, Path(work), trust_model, on_step)
        try:
            document, fallback = _analyse(backend, data, reference, model_file.path, target, budget,
                                          max_float_layers, start + time_budget_s, on_step)
        finally:
            backend.close()
        on_step("writing report")
        from edgekit.debug.report import render_html, render_markdown

        write_json_atomic(stage / "debug.json", document)
        write_text_atomic(stage / "debug.md", render_markdown(document))
        write_text_atomic(stage / "debug.html", render_html(document))
        if fallback is not None:
            (stage / f"model_int8_fallback{backend.suffix}").write_bytes(fallback.model)
    if fallback is not None:
        raise_if_unmet(fallback, Path(out) / "debug.json")
    return document


def _setup(model_file, recipe: Recipe, target: str, work: Path, trust_model: bool, on_step):
    """(backend, dataset, float reference fn) for the target."""
    from edgekit.backends.selective import keras_layer_names
    from edgekit.calibration.dataset import load_dataset
    from edgekit.sources.base import PreparedSource

    if target == "onnx":
        from edgekit.backends.onnx.selective import OnnxSelective, float_onnx

        fp32 = float_onnx(model_file.path, work)
        method = recipe.calibration.method
        options = {"method": "minmax" if method == "auto" else method, "per_channel": recipe.int8.per_channel}
        backend = OnnxSelective(fp32, None, keras_layer_names(model_file.path), options=options)
        recipe = _resolved(recipe, PreparedSource("onnx", backend.input_specs(), [], backend.reference(),
                                                  onnx_path=fp32), on_step)
        on_step("validating calibration data")
        data = load_dataset(recipe, backend.input_specs())
        backend.calibration = data.calibration_factory()
        return backend, data, backend.reference()
    from edgekit.backends.tflite.selective import TfliteSelective
    from edgekit.sources.tensorflow import export_fixed_savedmodel, reference_fn

    exported = export_fixed_savedmodel(model_file, work, recipe.input_shapes, trust_model)
    recipe = _resolved(recipe, PreparedSource(model_file.format, exported.inputs, exported.outputs,
                                              reference_fn(exported.saved_dir), saved_dir=exported.saved_dir), on_step)
    on_step("validating calibration data")
    data = load_dataset(recipe, exported.inputs)
    on_step("calibrating")
    backend = TfliteSelective(exported.saved_dir, data.calibration_factory(), recipe.int8,
                              keras_layer_names(model_file.path))
    return backend, data, reference_fn(exported.saved_dir)


def _analyse(backend, data, reference, model_path, target, budget, max_float_layers, deadline, on_step):
    feeds = data.validation_feeds
    ref_outputs = [reference(f) for f in feeds]
    evaluator = Evaluator(feeds, ref_outputs, data.labels)
    on_step("validating full INT8")
    int8_acc = evaluator.accuracy(backend, backend.build())
    on_step("per-layer error")
    if target == "tflite":
        from edgekit.backends.tflite.debugger import tflite_layer_errors

        errors = tflite_layer_errors(backend, feeds)
    else:
        from edgekit.backends.onnx.debugger import onnx_layer_errors

        errors = onnx_layer_errors(backend, feeds)
    remaining = deadline - time.monotonic()
    ranking, _ = measure_sensitivity(backend, evaluator, deadline=time.monotonic() + remaining / 2,
                                     on_step=on_step)
    on_step("checking calibration data")
    warnings = calibration_warnings(data.calibration_factory()(), errors)
    fallback = None
    if budget is not None:
        fallback = run_fallback(backend, evaluator, budget, ranking=ranking, on_step=on_step,
                                max_float_layers=max_float_layers,
                                time_budget_s=max(1.0, deadline - time.monotonic()))
    document = _document(model_path, target, backend, int8_acc, errors, ranking, warnings, fallback, len(feeds))
    return document, fallback


def _resolved(recipe: Recipe, source, on_step) -> Recipe:
    """The recipe with the preprocessing compress would use for this model and data."""
    from edgekit.preprocessing.resolve import resolve_preprocessing

    on_step("inferring the preprocessing")
    return recipe.model_copy(update={"preprocess": resolve_preprocessing(recipe, frozenset(), source).preprocess})
