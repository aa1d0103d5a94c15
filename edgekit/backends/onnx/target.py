"""The ONNX target: the fused fp32 graph (tf2onnx first for TensorFlow sources), QDQ INT8 and
FP16 artifacts, `method: auto` calibration choice, metadata_props, and the selective QDQ builder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

from edgekit.backends.base import Built, BuildContext, BuildResult, with_inventory

log = logging.getLogger("edgekit")
ONNX_PRECISIONS = ("fp32", "int8", "fp16")


def fusion_info(fusion: dict) -> dict:
    """The ONNX fusion report in the report's fusion schema."""
    return {
        "source_op_counts": fusion["ops_before"],
        "target_op_counts": fusion["ops_after"],
        "groups": [{"summary": f"{g['pass']}: {g['result']}", "layers": g["nodes"], "pass": g["pass"]}
                   for g in fusion["groups"]],
    }


def control_flow_notes(fusion: dict, int8: bool) -> list[str]:
    """Report notes (also logged as warnings): each folded If, and the ops left in control flow."""
    notes = [f"onnx: If {g['nodes'][0]!r} folded, {g['result']}; the artifacts assume these values"
             for g in fusion["groups"] if g["pass"] == "fold_if" and "calibration samples" in g["result"]]
    left = fusion.get("control_flow_ops", 0)
    if left and int8:
        notes.append(f"onnx: {left} ops inside control flow (If/Loop/Scan bodies) stay float: onnxruntime "
                     "quantizes no subgraph")
    for note in notes:
        log.warning("%s", note)
    return notes


class OnnxTarget:
    name = "onnx"
    formats = (".onnx",)
    precisions = ONNX_PRECISIONS
    needs = "onnx"
    upstream = None
    baseline = "onnx"
    uses_device = False
    runs_on_host = True

    def build(self, source, recipe, calibration, ctx: BuildContext) -> BuildResult:
        """model_fp32.onnx (fused) and the recipe's int8/fp16; only fp32 when dependency_only.

        facts: "fp32" (the fused float model) and "calibration_method" (as chosen for `auto`).
        """
        from edgekit.backends.onnx.artifacts import build_onnx_artifacts

        onnx_in = source.onnx(ctx.workdir, ctx.on_step)
        result = BuildResult()
        precisions = ["fp32"] if ctx.dependency_only else [p for p in recipe.precisions if p in ONNX_PRECISIONS]
        if not ctx.dependency_only and "dynamic" in recipe.precisions:
            result.notes.append("onnx: dynamic-range precision is built for TFLite only")
        ctx.on_step("building onnx " + ", ".join(precisions))
        auto = recipe.calibration.method == "auto"
        rounding = _plain_rounding(recipe)
        method = "minmax" if auto else recipe.calibration.method
        artifacts = build_onnx_artifacts(
            onnx_in, ctx.stage, precisions=precisions, calibration_factory=calibration,
            method=method, per_channel=recipe.int8.per_channel,
            weight_rounding=rounding,
            input_shapes={spec.name: list(spec.shape) for spec in source.inputs},  # as the source fixed them
            equalize=recipe.int8.equalize if "int8" in precisions or ctx.dependency_only else "off",
            smooth=recipe.int8.smooth if "int8" in precisions or ctx.dependency_only else "off")
        int8 = next((a for a in artifacts if a["precision"] == "int8"), None)
        if auto and int8 is not None and ctx.validation is not None:
            from edgekit.backends.onnx.calibration_method import choose_onnx_method

            ctx.on_step("choosing the ONNX calibration method")
            choice = choose_onnx_method(Path(artifacts[0]["path"]), Path(int8["path"]), calibration, *ctx.validation,
                                        per_channel=recipe.int8.per_channel, threads=recipe.validation.threads,
                                        weight_rounding=rounding)
            int8["steps"]["quantization"] = choice.pop("settings")
            int8["steps"]["calibration_method"] = choice
            method = choice["chosen"]
        if recipe.int8.bias_correction != "off" and int8 is not None and ctx.validation is not None:
            from edgekit.backends.onnx.bias_choice import choose_bias_correction

            ctx.on_step("correcting INT8 biases")
            int8["steps"]["bias_correction"] = choose_bias_correction(
                Path(artifacts[0]["path"]), Path(int8["path"]), calibration, *ctx.validation,
                mode=recipe.int8.bias_correction, threads=recipe.validation.threads)
        fusion = artifacts[0]["steps"]["fusion"]
        result.notes += control_flow_notes(fusion, "int8" in precisions or ctx.dependency_only)
        result.built = [with_inventory(self, Built(a["name"], self.name, a["precision"], Path(a["path"]),
                                                   {"steps": a["steps"], "opset": a["opset"]}))
                        for a in artifacts]
        result.fusion = fusion_info(fusion)
        result.facts = {"fp32": result.built[0].path, "calibration_method": method}
        return result

    def runner(self, path: Path, threads: Optional[int] = None):
        from edgekit.runtime.onnx import OnnxRunner

        return OnnxRunner(path, threads)

    def inspect(self, path: Path) -> tuple[dict, dict, dict]:
        from edgekit.backends.onnx.inspect import inspect_onnx

        return inspect_onnx(path)

    def embed_contract(self, path: Path, contract) -> None:
        from edgekit.backends.onnx.metadata import embed_onnx_metadata

        embed_onnx_metadata(Path(path), contract)

    def finish(self, built: Sequence[Built], ctx: BuildContext) -> list[str]:
        return []

    def selective(self, source, calibration, recipe, ctx: BuildContext, built: Sequence[Built] = ()):
        """QDQ builds over the fused fp32 graph compress quantizes (`built`'s fp32, else prepared
        from the source exactly as `build` prepares it), with the plain INT8 build's settings."""
        from edgekit.backends.onnx.artifacts import prepare_fp32
        from edgekit.backends.onnx.quantize import rebuild_options
        from edgekit.backends.onnx.selective import OnnxLadderSelective

        built_fp32 = next((b for b in built if b.precision == "fp32"), None)
        fp32, steps = (built_fp32.path, built_fp32.details.get("steps", {})) if built_fp32 else (None, {})
        if fp32 is None:
            ctx.on_step("preparing the fused ONNX graph")
            fp32 = ctx.workdir / "model_fp32.onnx"
            _, steps = prepare_fp32(source.onnx(ctx.workdir, ctx.on_step), fp32, calibration_factory=calibration,
                                    input_shapes={spec.name: list(spec.shape) for spec in source.inputs},
                                    equalize=recipe.int8.equalize, smooth=recipe.int8.smooth)
        int8 = next((b for b in built if b.precision == "int8"), None)
        if int8 is not None:
            options = rebuild_options(int8.details["steps"]["quantization"])
        else:
            method = recipe.calibration.method
            options = {"method": "minmax" if method == "auto" else method, "per_channel": recipe.int8.per_channel,
                       "weight_rounding": _plain_rounding(recipe)}
        return OnnxLadderSelective(fp32, calibration, source.layer_names, options=options,
                                   ladder_rounding="nearest" if recipe.int8.weight_rounding == "nearest" else "gptq",
                                   smoothing=steps.get("smoothing"), channel_groups=recipe.int8.channel_groups)


def _plain_rounding(recipe) -> str:
    """The plain INT8 build's weight rounding: gptq only when asked (auto rounds the ladder's)."""
    return "gptq" if recipe.int8.weight_rounding == "gptq" else "nearest"


TARGET = OnnxTarget()
