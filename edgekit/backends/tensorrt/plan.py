"""The TensorRT plan: symmetric per-channel INT8 QDQ ONNX for TensorRT, its calibration cache, the
exact trtexec command lines; with a device, the engine is built there and the log parsed, else the
result says "built": False and why."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from edgekit.backends.onnx.quantize import SampleFactory
from edgekit.fsutil import sha256_file
from edgekit.backends.tensorrt import trtexec as tensorrt


def build_tensorrt_plan(
    fp32_onnx_path: str | Path,
    out_dir: str | Path,
    *,
    calibration_factory: SampleFactory,
    method: str = "minmax",
    nodes_to_exclude: Sequence[str] = (),
    trt_version: str | None = None,
    device=None,
    fp16: bool = True,
    trtexec: str | None = None,
) -> dict:
    """TensorRT artifacts from an FP32 ONNX (use the fp32 artifact of build_onnx_artifacts).

    Writes `<stem>_trt_int8.onnx` (symmetric INT8 activations, per-channel INT8 weights, QDQ) and
    `<stem>.calib` (TensorRT cache text, header for `trt_version`, default 8.6.2); returns a dict
    with both, the trtexec command lines, and "engine": the device build result or
    {"built": False, "reason": ...}.
    """
    import onnx

    from edgekit.backends.onnx.quantize import quantize_qdq

    fp32_onnx_path, out_dir = Path(fp32_onnx_path), Path(out_dir)
    stem = fp32_onnx_path.stem.removesuffix("_fp32")
    qdq_path = out_dir / f"{stem}_trt_int8.onnx"
    calib_path = out_dir / f"{stem}.calib"
    settings = quantize_qdq(fp32_onnx_path, qdq_path, calibration_factory, method=method, per_channel=True,
                            symmetric_activations=True, nodes_to_exclude=nodes_to_exclude)  # fmt: skip
    version = trt_version or tensorrt.DEFAULT_TRT_VERSION
    tensors = tensorrt.write_calibration_cache(onnx.load(str(qdq_path)), calib_path,
                                               fp32_model=onnx.load(str(fp32_onnx_path)), version=version)
    explicit = tensorrt.trtexec_argv(qdq_path.name, f"{stem}.plan", timing_cache="timing.cache",
                                     layer_info=f"{stem}.layers.json", fp16=fp16)  # fmt: skip
    implicit = tensorrt.trtexec_argv(fp32_onnx_path.name, f"{stem}.plan", timing_cache="timing.cache",
                                     fp16=fp16, calib_cache=calib_path.name)  # fmt: skip
    if device is None:
        engine = {"built": False, "reason": "no device given (--device NAME); run the trtexec command on the board"}
    else:
        engine = tensorrt.build_engine_on_device(device, qdq_path, out_dir, fp16=fp16, trtexec=trtexec)
    return {
        "name": qdq_path.name,
        "path": str(qdq_path),
        "format": "onnx",
        "target": "tensorrt",
        "precision": "int8",
        "sha256": sha256_file(qdq_path),
        "quantization": settings,
        "calibration_cache": {"path": str(calib_path), "tensors": tensors, "header_version": version},
        "trtexec_command": tensorrt.command_line(explicit),
        "trtexec_command_implicit_int8": tensorrt.command_line(implicit),
        "engine": engine,
    }
