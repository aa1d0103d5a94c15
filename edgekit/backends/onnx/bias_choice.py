"""`int8.bias_correction` for ONNX: correct the INT8 model's biases, keep it where it validates better.

on: keep the corrected model; auto: keep it only when it scores higher on the held-out samples
(accuracy with labels, else top-1 agreement, then SQNR: the calibration-method ranking).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from edgekit.backends.onnx.calibration_method import _score
from edgekit.validate.evaluate import compare


def choose_bias_correction(fp32_path: Path, int8_path: Path, calibration, feeds, reference, labels, roles=None, *,
                           mode: str = "auto", threads: int = 1) -> dict:
    """Correct `int8_path` in place when mode is "on", or "auto" and it measures better; returns
    {"mode", "applied", "layers", "max_shift", "candidates": {"plain"|"corrected": metrics}}."""
    from edgekit.backends.onnx.bias_correction import correct_biases
    from edgekit.runtime.onnx import OnnxRunner

    def measure(path: Path):
        runner = OnnxRunner(path, threads)
        return compare(reference, [runner.run(f) for f in feeds], labels, roles)

    with tempfile.TemporaryDirectory(prefix="edgekit-bias-") as work:
        corrected = Path(work) / "corrected.onnx"
        record = correct_biases(fp32_path, int8_path, corrected, calibration)
        scores = {"plain": measure(int8_path), "corrected": measure(corrected)}
        applied = mode == "on" or _score(scores["corrected"]) > _score(scores["plain"])
        if applied:
            int8_path.write_bytes(corrected.read_bytes())
    return {"mode": mode, "applied": applied, "layers": record["layers"], "max_shift": record["max_shift"],
            "candidates": {k: {"accuracy": a.accuracy, "top1_agreement": a.top1_agreement, "sqnr_db": a.sqnr_db}
                           for k, a in scores.items()}}
