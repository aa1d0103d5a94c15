"""`int8.bias_correction` for ONNX: correct the INT8 model's biases, keep it where it validates better."""

from __future__ import annotations

import tempfile
from pathlib import Path

from edgekit.backends.bias_choice import keep_better


def choose_bias_correction(fp32_path: Path, int8_path: Path, calibration, feeds, reference, labels, roles=None, *,
                           mode: str = "auto", threads: int = 1) -> dict:
    """Correct `int8_path` in place when mode is "on", or "auto" and it measures better; returns
    {"mode", "applied", "layers", "max_shift", "candidates": {"plain"|"corrected": metrics}}."""
    from edgekit.backends.onnx.bias_correction import correct_biases
    from edgekit.runtime.onnx import OnnxRunner

    with tempfile.TemporaryDirectory(prefix="edgekit-bias-") as work:
        corrected = Path(work) / "corrected.onnx"
        record = correct_biases(fp32_path, int8_path, corrected, calibration)
        choice = keep_better(OnnxRunner(int8_path, threads), OnnxRunner(corrected, threads), feeds, reference,
                             labels, roles, mode=mode)
        if choice["applied"]:
            int8_path.write_bytes(corrected.read_bytes())
    return {**choice, "layers": record["layers"], "max_shift": record["max_shift"]}
