"""The ONNX and TensorRT targets: export (TensorFlow sources), fuse, QDQ INT8 / FP16, TRT plan."""

from __future__ import annotations

import logging
from pathlib import Path

from edgekit.recipe.schema import Recipe
from edgekit.backends.base import Built
from edgekit.sources.base import PreparedSource

log = logging.getLogger("edgekit")
ONNX_PRECISIONS = ("fp32", "int8", "fp16")


def _built(name: str, target: str, precision: str, path: Path, details: dict) -> Built:
    """A Built with the artifact's op counts, conv/matmul dtypes and compression summary."""
    from edgekit.backends.onnx.inspect import inspect_onnx

    counts, dtypes, summary = inspect_onnx(path)
    return Built(name, target, precision, path, details, counts, dtypes, summary)


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


def build_all(source: PreparedSource, recipe: Recipe, targets: list[str], calibration, stage: Path,
              workdir: Path, on_step, device=None, validation=None):
    """([Built], {target: fusion}, notes) for the onnx and tensorrt targets.

    validation: (feeds, reference outputs, labels) of the held-out split, for method "auto".
    """
    from edgekit.backends.onnx.artifacts import build_onnx_artifacts, build_tensorrt_plan

    onnx_in = source.onnx_path
    notes = []
    if onnx_in is None:
        from edgekit.sources.tf2onnx_export import export_to_onnx

        on_step("exporting to ONNX (tf2onnx)")
        onnx_in = workdir / "model.onnx"
        export_to_onnx(source.saved_dir, onnx_in)
    precisions = [p for p in recipe.precisions if p in ONNX_PRECISIONS] if "onnx" in targets else ["fp32"]
    if "onnx" in targets and "dynamic" in recipe.precisions:
        notes.append("onnx: dynamic-range precision is built for TFLite only")
    on_step("building onnx " + ", ".join(precisions))
    auto = recipe.calibration.method == "auto"
    method = "minmax" if auto else recipe.calibration.method
    artifacts = build_onnx_artifacts(
        onnx_in, stage, precisions=precisions, calibration_factory=calibration,
        method=method, per_channel=recipe.int8.per_channel,
        input_shapes={spec.name: list(spec.shape) for spec in source.inputs})  # as the source fixed them
    if auto and calibration is not None and "int8" in precisions:
        from edgekit.backends.onnx.calibration_method import choose_onnx_method

        on_step("choosing the ONNX calibration method")
        int8 = next(a for a in artifacts if a["precision"] == "int8")
        choice = choose_onnx_method(Path(artifacts[0]["path"]), Path(int8["path"]), calibration, *validation,
                                    per_channel=recipe.int8.per_channel, threads=recipe.validation.threads)
        int8["steps"]["quantization"] = choice.pop("settings")
        int8["steps"]["calibration_method"] = choice
        method = choice["chosen"]
    notes += control_flow_notes(artifacts[0]["steps"]["fusion"], "int8" in precisions or "tensorrt" in targets)
    built = [_built(a["name"], "onnx", a["precision"], Path(a["path"]), {"steps": a["steps"], "opset": a["opset"]})
             for a in artifacts]
    fusion = {"onnx": fusion_info(artifacts[0]["steps"]["fusion"])}
    if "tensorrt" in targets:
        if calibration is None:
            notes.append("tensorrt: INT8 plan skipped (needs calibration data)")
        else:
            on_step("building tensorrt plan" + (f" on {device.name}" if device else ""))
            plan = build_tensorrt_plan(built[0].path, stage, calibration_factory=calibration,
                                       method=method, device=device, trtexec=getattr(device, "trtexec", None))
            details = {k: plan[k] for k in ("quantization", "calibration_cache", "trtexec_command",
                                             "trtexec_command_implicit_int8", "engine")}
            details["calibration_cache"]["path"] = Path(details["calibration_cache"]["path"]).name
            built.append(_built(plan["name"], "tensorrt", "int8", Path(plan["path"]), details))
            if not plan["engine"].get("built"):
                notes.append(f"tensorrt: engine not built: {plan['engine'].get('reason')}")
    return built, fusion, notes
