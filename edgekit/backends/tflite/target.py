"""The TFLite target: one flatbuffer per precision, its op inventory and the fusion report."""

from __future__ import annotations

from pathlib import Path

from edgekit.recipe.schema import Recipe
from edgekit.backends.base import Built
from edgekit.sources.base import PreparedSource


def build_all(source: PreparedSource, recipe: Recipe, calibration, stage: Path, on_step):
    """([Built per precision], {"tflite": fusion}) for the recipe's precisions, written into `stage`."""
    from edgekit.backends.tflite.build import build_tflite
    from edgekit.backends.tflite.fusion import fusion_groups, source_layers
    from edgekit.backends.tflite.inspect import compression, compute_dtypes, op_counts, read_ops

    built, fusion = [], {}
    layers, source_counts = source_layers(source.saved_dir)
    for precision in recipe.precisions:
        on_step(f"building tflite {precision}")
        flatbuffer = build_tflite(source.saved_dir, precision, calibration, recipe.int8)
        name = f"model_{precision}.tflite"
        (stage / name).write_bytes(flatbuffer)
        ops = read_ops(flatbuffer)
        details = {"io_dtype": recipe.int8.io_dtype} if precision == "int8" else {}
        built.append(Built(name, "tflite", precision, stage / name, details, op_counts(ops), compute_dtypes(ops),
                           compression(ops)))
        if precision == "fp32":
            fusion["tflite"] = {"source_op_counts": source_counts, "target_op_counts": op_counts(ops),
                                "groups": fusion_groups(layers, ops)}
    return built, fusion

