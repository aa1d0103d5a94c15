"""The child jobs of scripts/bench/run.py, each run as `python -m scripts.bench --child KIND JOB RESULT` in its own
process (so its wall time and peak RSS are measured alone): the raw-library baselines and
edgekit's ONNX family. A job is a JSON dict; the result is the JSON dict a job returns."""

from __future__ import annotations

import time
from pathlib import Path

from scripts.bench import data as bench_data


def _loader(job: dict):
    size, color, scale, offset = tuple(job["size"]), job["color"], job["scale"], job["offset"]
    return lambda path: bench_data.load_image(Path(path), size, color, scale, offset)


def child_raw_tflite(job: dict) -> dict:
    """What a user writes by hand: TFLiteConverter FP32, then full-integer INT8 (float I/O)."""
    t0 = time.perf_counter()
    import tensorflow as tf

    result = {"import_s": time.perf_counter() - t0}
    load = _loader(job)

    def representative():
        for path in job["files"]:
            yield [load(path)]

    for precision in ("fp32", "int8"):
        t = time.perf_counter()
        converter = tf.lite.TFLiteConverter.from_saved_model(job["saved_model"])
        if precision == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        Path(job["out_dir"], f"raw_{precision}.tflite").write_bytes(converter.convert())
        result[f"{precision}_s"] = time.perf_counter() - t
    return result


def child_onnx_edgekit(job: dict) -> dict:
    """edgekit's ONNX family: fuse + verify + FP32, then QDQ INT8 (build_onnx_artifacts)."""
    from edgekit.backends.onnx.artifacts import build_onnx_artifacts

    load = _loader(job)
    t = time.perf_counter()
    artifacts = build_onnx_artifacts(job["onnx"], job["out_dir"], precisions=("int8",),
                                     calibration_factory=lambda: ({job["input"]: load(p)} for p in job["files"]),
                                     per_channel=job.get("per_channel", True))
    return {"work_s": time.perf_counter() - t, "paths": {a["precision"]: a["path"] for a in artifacts}}


def child_onnx_raw(job: dict) -> dict:
    """onnxruntime quantize_static with its default settings and a plain CalibrationDataReader."""
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    load = _loader(job)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.files = iter(job["files"])

        def get_next(self):
            path = next(self.files, None)
            return None if path is None else {job["input"]: load(path)}

    out = str(Path(job["out_dir"]) / "raw_int8.onnx")
    t = time.perf_counter()
    quantize_static(job["onnx"], out, Reader())
    return {"work_s": time.perf_counter() - t, "paths": {"int8": out}}


CHILDREN = {"raw-tflite": child_raw_tflite, "onnx-edgekit": child_onnx_edgekit, "onnx-raw": child_onnx_raw}
