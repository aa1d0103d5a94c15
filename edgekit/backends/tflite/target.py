"""The TFLite target: one flatbuffer per precision from the fixed SavedModel, its op inventory,
the fusion report, the preprocessing metadata, and the selective builder (QuantizationDebugger)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from edgekit.backends.base import Built, BuildContext, BuildResult


class TfliteTarget:
    name = "tflite"
    formats = (".tflite",)
    precisions = ("fp32", "fp16", "dynamic", "int8")
    needs = "savedmodel"
    upstream = None
    baseline = "tflite"
    uses_device = False
    runs_on_host = True

    def build(self, source, recipe, calibration, ctx: BuildContext) -> BuildResult:
        """One `model_<precision>.tflite` per recipe precision; the fp32 build's op groups are the fusion report."""
        from edgekit.backends.tflite.build import build_tflite
        from edgekit.backends.tflite.fusion import fusion_groups, source_layers
        from edgekit.backends.tflite.inspect import compression, compute_dtypes, op_counts, read_ops

        result = BuildResult()
        layers, source_counts = source_layers(source.saved_dir)
        for precision in recipe.precisions:
            ctx.on_step(f"building tflite {precision}")
            flatbuffer = build_tflite(source.saved_dir, precision, calibration, recipe.int8)
            name = f"model_{precision}.tflite"
            details = {"io_dtype": recipe.int8.io_dtype} if precision == "int8" else {}
            if precision == "int8" and recipe.int8.bias_correction != "off" and ctx.validation is not None:
                ctx.on_step("correcting INT8 biases")
                flatbuffer, details["bias_correction"] = _bias_corrected(
                    (ctx.stage / "model_fp32.tflite").read_bytes(), flatbuffer, calibration, ctx.validation, recipe)
            (ctx.stage / name).write_bytes(flatbuffer)
            ops = read_ops(flatbuffer)
            result.built.append(Built(name, self.name, precision, ctx.stage / name, details, op_counts(ops),
                                      compute_dtypes(ops), compression(ops)))
            if precision == "fp32":
                result.fusion = {"source_op_counts": source_counts, "target_op_counts": op_counts(ops),
                                 "groups": fusion_groups(layers, ops)}
        return result

    def runner(self, path: Path, threads: Optional[int] = None):
        from edgekit.runtime.tflite import TfliteRunner

        return TfliteRunner(str(path), threads)

    def inspect(self, path: Path) -> tuple[dict, dict, dict]:
        from edgekit.backends.tflite.inspect import compression, compute_dtypes, op_counts, read_ops

        ops = read_ops(Path(path).read_bytes())
        return op_counts(ops), compute_dtypes(ops), compression(ops)

    def embed_contract(self, path: Path, contract) -> None:
        from edgekit.backends.tflite.metadata import embed

        embed(Path(path), contract)

    def finish(self, built: Sequence[Built], ctx: BuildContext) -> list[str]:
        return []

    def selective(self, source, calibration, recipe, ctx: BuildContext, built: Sequence[Built] = ()):
        """Calibrates the fixed SavedModel once (the plain INT8 build's own converter settings)."""
        from edgekit.backends.tflite.selective import TfliteSelective

        ctx.on_step("calibrating")
        return TfliteSelective(source.saved_dir, calibration, recipe.int8, source.layer_names)


TARGET = TfliteTarget()


def _bias_corrected(fp32: bytes, int8: bytes, calibration, validation, recipe) -> tuple[bytes, dict]:
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
