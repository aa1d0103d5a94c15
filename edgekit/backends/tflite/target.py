"""The TFLite target: one flatbuffer per precision, its op inventory and the fusion report."""

from __future__ import annotations

from pathlib import Path

from edgekit.recipe.schema import Recipe
from edgekit.backends.base import Built
from edgekit.sources.base import PreparedSource


def build_all(source: PreparedSource, recipe: Recipe, calibration, stage: Path, on_step, validation=None):
    """([Built per precision], {"tflite": fusion}) for the recipe's precisions, written into `stage`.

    validation: (feeds, reference outputs, labels, roles) of the held-out split, for
    `int8.bias_correction: auto`.
    """
    from edgekit.backends.tflite.build import build_tflite
    from edgekit.backends.tflite.fusion import fusion_groups, source_layers
    from edgekit.backends.tflite.inspect import compression, compute_dtypes, op_counts, read_ops

    built, fusion = [], {}
    layers, source_counts = source_layers(source.saved_dir)
    for precision in recipe.precisions:
        on_step(f"building tflite {precision}")
        flatbuffer = build_tflite(source.saved_dir, precision, calibration, recipe.int8)
        name = f"model_{precision}.tflite"
        details = {"io_dtype": recipe.int8.io_dtype} if precision == "int8" else {}
        if precision == "int8" and recipe.int8.bias_correction != "off" and validation is not None:
            on_step("correcting INT8 biases")
            flatbuffer, details["bias_correction"] = _bias_corrected(
                (stage / "model_fp32.tflite").read_bytes(), flatbuffer, calibration, validation, recipe)
        (stage / name).write_bytes(flatbuffer)
        ops = read_ops(flatbuffer)
        built.append(Built(name, "tflite", precision, stage / name, details, op_counts(ops), compute_dtypes(ops),
                           compression(ops)))
        if precision == "fp32":
            fusion["tflite"] = {"source_op_counts": source_counts, "target_op_counts": op_counts(ops),
                                "groups": fusion_groups(layers, ops)}
    return built, fusion


def _bias_corrected(fp32: bytes, int8: bytes, calibration, validation, recipe: Recipe) -> tuple[bytes, dict]:
    """The INT8 flatbuffer to keep (corrected when `on`, or `auto` and it validates better) and the record."""
    import tempfile

    from edgekit.backends.bias_choice import keep_better
    from edgekit.backends.tflite.bias_correction import correct_biases_tflite
    from edgekit.runtime.tflite import TfliteRunner

    corrected, record = correct_biases_tflite(fp32, int8, calibration)
    with tempfile.TemporaryDirectory(prefix="edgekit-bias-") as work:
        paths = [Path(work) / "plain.tflite", Path(work) / "corrected.tflite"]
        for path, model in zip(paths, (int8, corrected)):
            path.write_bytes(model)
        threads = recipe.validation.threads
        choice = keep_better(TfliteRunner(str(paths[0]), threads), TfliteRunner(str(paths[1]), threads),
                             *validation, mode=recipe.int8.bias_correction)
    kept = corrected if choice["applied"] else int8
    return kept, {**choice, "layers": record["layers"], "max_shift": record["max_shift"]}
