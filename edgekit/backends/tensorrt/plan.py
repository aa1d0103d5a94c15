"""The TensorRT plan: symmetric per-channel INT8 QDQ ONNX for TensorRT, the exact trtexec command
lines, and (once the float fallback has chosen the final model, `finish_plan`) its calibration
cache, its per-layer precision record and, with a device, the engine built there and checked
against that record."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from edgekit.backends.onnx.quantize import SampleFactory
from edgekit.backends.tensorrt import trtexec as tensorrt
from edgekit.backends.tensorrt.precision import engine_check, plan_precisions
from edgekit.errors import EdgekitError
from edgekit.fsutil import sha256_file

NO_DEVICE = "no device given (--device NAME); run the trtexec command on the board"


def build_tensorrt_plan(
    fp32_onnx_path: str | Path,
    out_dir: str | Path,
    *,
    calibration_factory: SampleFactory,
    method: str = "minmax",
    nodes_to_exclude: Sequence[str] = (),
    fp16: bool = True,
) -> dict:
    """Write `<stem>_trt_int8.onnx` (symmetric INT8 activations, per-channel INT8 weights, QDQ) from
    an FP32 ONNX (the ONNX target's fp32 artifact); returns its name, path, sha256, quantization
    settings and the trtexec command lines (explicit QDQ; implicit INT8 from `<stem>.calib`)."""
    from edgekit.backends.onnx.quantize import quantize_qdq

    fp32_onnx_path, out_dir = Path(fp32_onnx_path), Path(out_dir)
    stem = fp32_onnx_path.stem.removesuffix("_fp32")
    qdq_path = out_dir / f"{stem}_trt_int8.onnx"
    settings = quantize_qdq(fp32_onnx_path, qdq_path, calibration_factory, method=method, per_channel=True,
                            symmetric_activations=True, nodes_to_exclude=nodes_to_exclude)  # fmt: skip
    explicit = tensorrt.trtexec_argv(qdq_path.name, f"{stem}.plan", timing_cache="timing.cache",
                                     layer_info=f"{stem}.layers.json", fp16=fp16)  # fmt: skip
    implicit = tensorrt.trtexec_argv(fp32_onnx_path.name, f"{stem}.plan", timing_cache="timing.cache",
                                     fp16=fp16, calib_cache=f"{stem}.calib")  # fmt: skip
    return {
        "name": qdq_path.name,
        "path": str(qdq_path),
        "sha256": sha256_file(qdq_path),
        "quantization": settings,
        "trtexec_command": tensorrt.command_line(explicit),
        "trtexec_command_implicit_int8": tensorrt.command_line(implicit),
    }


def finish_plan(qdq_path: str | Path, fp32_onnx_path: str | Path, *, device=None, trtexec: str | None = None,
                trt_version: str | None = None, fp16: bool = True) -> dict:
    """What depends on the final QDQ model: `<stem>.calib` (TensorRT cache text, header for
    `trt_version`, default 8.6.2), "precisions" (per conv/matmul: int8 or fp16, MAC shares) and
    "engine": the device build with each layer's engine precision, or {"built": False, "reason"}."""
    import onnx

    qdq_path, fp32_onnx_path = Path(qdq_path), Path(fp32_onnx_path)
    stem = fp32_onnx_path.stem.removesuffix("_fp32")
    calib_path = qdq_path.parent / f"{stem}.calib"
    version = trt_version or tensorrt.DEFAULT_TRT_VERSION
    tensors = tensorrt.write_calibration_cache(onnx.load(str(qdq_path)), calib_path,
                                               fp32_model=onnx.load(str(fp32_onnx_path)), version=version)
    precisions = plan_precisions(qdq_path, fp16)
    if device is None:
        engine = {"built": False, "reason": NO_DEVICE}
    else:
        engine = tensorrt.build_engine_on_device(device, qdq_path, qdq_path.parent, fp16=fp16, trtexec=trtexec)
        engine["precision_check"] = _check(precisions, qdq_path.parent / engine["layer_info"])
    return {"calibration_cache": {"path": calib_path.name, "tensors": tensors, "header_version": version},
            "precisions": precisions, "engine": engine}


def _check(precisions: dict, layer_info: Path) -> dict:
    from edgekit.backends.tensorrt.trtexec_log import parse_layer_inputs

    try:
        return engine_check(precisions, parse_layer_inputs(layer_info.read_text()))
    except (EdgekitError, OSError, ValueError) as err:  # no layer info (trtexec before 8.2)
        return {"matched_layers": 0, "planned_layers": len(precisions["layers"]), "differs": [],
                "reason": f"no layer info ({err})"}
