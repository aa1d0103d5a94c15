"""Stage: accuracy-aware float fallback for INT8 artifacts that miss the recipe's accuracy budget.

Runs only when an accuracy gate is set (max_accuracy_drop, min_agreement, min_sqnr_db,
min_sequence_match, min_map_iou or min_box_f1) and
`fallback.enabled` (default on). For each INT8 TFLite/ONNX artifact the search in
`edgekit.debug.fallback` keeps the most sensitive layers in float until the budget holds; the
artifact file is replaced by the chosen model and every step is recorded in its details.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.recipe.schema import Recipe


def budget_of(recipe: Recipe):
    """The fallback Budget from the recipe's gates, or None when there is none or fallback is off."""
    from edgekit.debug.scoring import Budget

    g = recipe.gates
    limits = (g.max_accuracy_drop, g.min_agreement, g.min_sqnr_db, g.min_sequence_match, g.min_map_iou, g.min_box_f1)
    if not recipe.fallback.enabled or limits == (None,) * len(limits):
        return None
    return Budget(*limits)


def apply_fallback(built: list, source, recipe: Recipe, data, ref_outputs, model_path: Path, on_step,
                   roles=None) -> None:
    """Replace each INT8 artifact that misses the budget by its smallest float-fallback model.

    roles: the outputs' roles (OutputRoles); the budget reads the primary output [default: inferred].
    """
    budget = budget_of(recipe)
    if budget is None or data.calibration_factory() is None:
        return
    from edgekit.backends.selective import keras_layer_names
    from edgekit.debug.fallback import run_fallback, run_tflite_fallback
    from edgekit.backends.onnx.selective import OnnxSelective
    from edgekit.debug.scoring import Evaluator
    from edgekit.backends.onnx.quantize import rebuild_options

    fb = recipe.fallback
    names = keras_layer_names(model_path) if model_path.suffix == ".keras" else ()
    fp32_onnx = next((b.path for b in built if b.target == "onnx" and b.precision == "fp32"), None)
    for artifact in built:
        if artifact.precision != "int8" or artifact.target not in ("tflite", "onnx"):
            continue
        on_step(f"float fallback search for {artifact.name}")
        if artifact.target == "tflite":
            result = run_tflite_fallback(
                source.saved_dir, data.calibration_factory(), recipe.int8, data.validation_feeds, ref_outputs,
                data.labels, budget, layer_names=names, max_float_layers=fb.max_float_layers,
                time_budget_s=fb.time_budget_s, threads=recipe.validation.threads, on_step=on_step, roles=roles)
        else:
            options = rebuild_options(artifact.details["steps"]["quantization"])  # as the plain INT8 build
            backend = OnnxSelective(fp32_onnx, data.calibration_factory(), names, options=options)
            try:
                evaluator = Evaluator(data.validation_feeds, ref_outputs, data.labels,
                                      threads=recipe.validation.threads, roles=roles)
                result = run_fallback(backend, evaluator, budget, max_float_layers=fb.max_float_layers,
                                      time_budget_s=fb.time_budget_s, on_step=on_step)
            finally:
                backend.close()
        if result.best.float_nodes:
            artifact.path.write_bytes(result.model)
            _refresh_inventory(artifact)
        artifact.details["fallback"] = {
            "budget": budget.describe(), "met": result.met, "strategy": result.strategy,
            "stopped": result.stopped, "float_layers": result.float_layers,
            "steps": [step.to_dict() for step in result.steps],
        }


def _refresh_inventory(artifact) -> None:
    """Op counts, compute dtypes and MAC shares of a replaced artifact (float layers changed them)."""
    if artifact.target == "tflite":
        from edgekit.backends.tflite.inspect import compression, compute_dtypes, op_counts, read_ops

        ops = read_ops(artifact.path.read_bytes())
        artifact.op_counts, artifact.compute_dtypes, artifact.compression = (
            op_counts(ops), compute_dtypes(ops), compression(ops))
    else:
        from edgekit.backends.onnx.inspect import inspect_onnx

        artifact.op_counts, artifact.compute_dtypes, artifact.compression = inspect_onnx(artifact.path)
