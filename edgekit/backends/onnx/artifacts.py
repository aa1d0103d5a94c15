"""The ONNX target's artifacts.

`build_onnx_artifacts(source, out_dir, precisions=..., calibration_factory=...)`:
    load (safe) -> opset upgrade to >= 13 -> fix dynamic input dims and fold shape subgraphs ->
    fuse (report; an If folds where its condition follows from constants and from inputs every
    calibration sample holds at one value) -> numerical check of the fusion on calibration
    samples (1e-4 relative) ->
    write `<stem>_fp32.onnx`, then per requested precision `<stem>_int8.onnx` (QDQ, onnxruntime)
    and/or `<stem>_fp16.onnx`. Returns one dict per artifact:
    {"name", "path", "format": "onnx", "precision", "sha256", "opset", "input_shapes", "steps"}
    where steps holds the opset record, fixed shapes, fusion report and quantization settings.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from edgekit.errors import UsageError
from edgekit.fsutil import sha256_file
from edgekit.backends.onnx.quantize import SampleFactory, StreamingReader

PRECISIONS = ("fp32", "int8", "fp16")
VERIFY_SAMPLES = 8


def _artifact(path: Path, precision: str, model_info: dict, steps: dict) -> dict:
    return {
        "name": path.name,
        "path": str(path),
        "format": "onnx",
        "precision": precision,
        "sha256": sha256_file(path),
        **model_info,
        "steps": steps,
    }


def prepare_fp32(
    source: str | Path,
    out_path: str | Path,
    *,
    calibration_factory: SampleFactory | None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    verify_samples: int = VERIFY_SAMPLES,
    equalize: str = "off",
    smooth: str = "off",
) -> tuple[dict, dict]:
    """Load, upgrade, fix shapes, fuse, equalize, smooth, verify and save the FP32 model; return
    (model info, steps).

    steps["fusion"]["control_flow_ops"] counts the ops left inside If/Loop/Scan bodies (they stay float).
    equalize: cross-layer equalization after fusion, auto | on | off [default off]; the pairs it
    rescaled are in steps["equalization"]. smooth: activation smoothing on the calibration
    samples after it (`backends.onnx.smooth`), auto | on | off [default off]; the tensors it
    rescaled are in steps["smoothing"]. The verification covers both.
    """
    import onnx

    from edgekit.backends.onnx.fusion.fold_if import has_control_flow, held_inputs, ops_in_control_flow
    from edgekit.backends.onnx.fusion.runner import fuse
    from edgekit.backends.onnx.fusion.verify import check_equivalent
    from edgekit.backends.onnx.shapes import fix_input_shapes
    from edgekit.sources.onnx_load import input_specs, load_onnx, upgrade_opset
    from edgekit.backends.onnx.quantize import graph_inputs

    model = load_onnx(source)
    model, opset = upgrade_opset(model)
    model, shapes = fix_input_shapes(model, input_shapes)
    held = None
    if calibration_factory is not None and has_control_flow(model.graph):
        held = held_inputs(model, calibration_factory())
    fused, report = fuse(model, held=held)
    steps = {"opset": opset, "shapes": shapes,
             "fusion": {**report.to_dict(), "control_flow_ops": ops_in_control_flow(fused.graph)}}
    if equalize != "off":
        from edgekit.backends.onnx.equalize import equalize_onnx

        steps["equalization"] = equalize_onnx(fused, equalize)
    if smooth != "off" and calibration_factory is not None:
        from edgekit.backends.onnx.smooth import smooth_onnx

        steps["smoothing"] = smooth_onnx(fused, calibration_factory, graph_inputs(fused.graph), smooth)
    onnx.save(fused, str(out_path))
    if calibration_factory is not None and verify_samples > 0:
        reader = StreamingReader(calibration_factory, graph_inputs(fused.graph))
        feeds: Iterable = (reader.check(s, i) for i, s in enumerate(itertools.islice(calibration_factory(), verify_samples)))
        steps["fusion"]["verified"] = {"samples": verify_samples, **check_equivalent(model, fused, feeds)}
    info = {"opset": opset["to"], "input_shapes": input_specs(fused)}
    return info, steps


def build_onnx_artifacts(
    source_onnx_path: str | Path,
    out_dir: str | Path,
    *,
    precisions: Sequence[str] = ("int8",),
    calibration_factory: SampleFactory | None = None,
    method: str = "minmax",
    per_channel: bool = True,
    symmetric_activations: bool = False,
    nodes_to_exclude: Sequence[str] = (),
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    equalize: str = "off",
    smooth: str = "off",
    weight_rounding: str = "nearest",
) -> list[dict]:
    """Build the ONNX artifacts of `source_onnx_path` into `out_dir` (see the module docstring).

    The FP32 (fused) artifact is always produced, first; "int8" needs `calibration_factory`, a
    callable returning a fresh iterator of {input name: array} samples each time it is called.
    equalize, smooth: cross-layer equalization and activation smoothing of the FP32 graph every
    artifact starts from (`prepare_fp32`) [default off];
    weight_rounding: of the INT8 weights, "nearest" [default] or "gptq" (`quantize_qdq`).
    """
    from edgekit.backends.onnx.quantize import convert_fp16, quantize_qdq

    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown:
        raise UsageError(f"unknown ONNX precisions {unknown}; choose from {list(PRECISIONS)}")
    if "int8" in precisions and calibration_factory is None:
        raise UsageError("INT8 needs calibration data (--calibration)")
    out_dir = Path(out_dir)
    stem = Path(source_onnx_path).stem
    fp32_path = out_dir / f"{stem}_fp32.onnx"
    info, steps = prepare_fp32(source_onnx_path, fp32_path, calibration_factory=calibration_factory,
                               input_shapes=input_shapes, equalize=equalize, smooth=smooth)  # fmt: skip
    artifacts = [_artifact(fp32_path, "fp32", info, steps)]
    if "int8" in precisions:
        path = out_dir / f"{stem}_int8.onnx"
        settings = quantize_qdq(fp32_path, path, calibration_factory, method=method, per_channel=per_channel,
                                symmetric_activations=symmetric_activations,
                                nodes_to_exclude=nodes_to_exclude, weight_rounding=weight_rounding)  # fmt: skip
        artifacts.append(_artifact(path, "int8", info, {"from": fp32_path.name, "quantization": settings}))
    if "fp16" in precisions:
        path = out_dir / f"{stem}_fp16.onnx"
        settings = convert_fp16(fp32_path, path)
        artifacts.append(_artifact(path, "fp16", info, {"from": fp32_path.name, "conversion": settings}))
    return artifacts
