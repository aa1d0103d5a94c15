"""`calibration.method: auto` for ONNX: quantize with each method, keep the one that validates best.

Candidates: minmax, entropy, percentile (onnxruntime's calibrators). Each INT8 model is run on the
held-out samples; the best has the highest accuracy (with labels), else the highest top-1
agreement, then the highest SQNR. TFLite's converter has only min/max calibration.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from edgekit.backends.bias_choice import score
from edgekit.validate.evaluate import compare

CANDIDATES = ("minmax", "entropy", "percentile")


def choose_onnx_method(fp32_path: Path, int8_path: Path, calibration, feeds, reference, labels, roles=None, *,
                       per_channel: bool, threads: int, weight_rounding: str = "nearest") -> dict:
    """Try every candidate; leave the best INT8 model at `int8_path`; return what was measured
    ({"chosen", "candidates": {method: metrics}, "settings": the chosen quantizer settings}).
    weight_rounding: `quantize_qdq`'s (gptq: rounded once, the same integers for every method)."""
    from edgekit.backends.onnx.quantize import quantize_qdq
    from edgekit.runtime.onnx import OnnxRunner

    scores, best = {}, None
    with tempfile.TemporaryDirectory(prefix="edgekit-method-") as work:
        for method in CANDIDATES:
            candidate = Path(work) / f"{method}.onnx"
            settings = quantize_qdq(fp32_path, candidate, calibration, method=method, per_channel=per_channel,
                                    weight_rounding=weight_rounding, rounding_cache=Path(work) / "rounded.npz")
            runner = OnnxRunner(candidate, threads)
            acc = compare(reference, [runner.run(f) for f in feeds], labels, roles)
            scores[method] = {"accuracy": acc.accuracy, "top1_agreement": acc.top1_agreement,
                              "sqnr_db": acc.sqnr_db}
            if best is None or score(acc) > best[0]:
                best = (score(acc), method, candidate, settings)
        int8_path.write_bytes(best[2].read_bytes())
    return {"chosen": best[1], "candidates": scores, "settings": best[3]}
