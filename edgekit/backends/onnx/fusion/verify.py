"""Numerical check of a rewrite: run both models in onnxruntime on the same real inputs."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from edgekit.errors import ConversionError


def _session(model, optimized: bool = False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    level = ort.GraphOptimizationLevel
    options.graph_optimization_level = level.ORT_ENABLE_ALL if optimized else level.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def max_relative_error(reference, candidate, feeds: Iterable[dict[str, np.ndarray]], *,
                       optimized: bool = False) -> float:
    """Largest |ref - cand| / max(|ref|) over every output and feed (per-output normalization).

    Both are onnx ModelProtos with the same output names; `optimized` (default off) lets
    onnxruntime rewrite the candidate. Normalizing by each output's largest magnitude keeps
    near-zero elements from dominating, as `np.allclose` with rtol would not.
    """
    ref_sess, cand_sess = _session(reference), _session(candidate, optimized)
    names = [o.name for o in ref_sess.get_outputs()]
    worst = 0.0
    for feed in feeds:
        ref = ref_sess.run(names, feed)
        cand = cand_sess.run(names, feed)
        for a, b in zip(ref, cand):
            a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
            scale = max(float(np.max(np.abs(a64))), 1e-12) if a64.size else 1.0
            worst = max(worst, float(np.max(np.abs(a64 - b64))) / scale if a64.size else 0.0)
    return worst


def check_equivalent(reference, candidate, feeds, *, rtol: float = 1e-4, what: str = "fusion") -> dict:
    """Check a rewrite; returns {max_relative_error, tolerance, onnxruntime_own_error}.

    The tolerance is `rtol` (default 1e-4), or, on deep models where float32 rounding alone
    exceeds it, twice the deviation onnxruntime's own graph optimizer causes on the same inputs
    (its BatchNorm folding rounds the same way ours does). Raises ConversionError beyond it.
    """
    feeds = list(feeds)
    error = max_relative_error(reference, candidate, feeds)
    record = {"max_relative_error": error, "tolerance": rtol, "onnxruntime_own_error": None}
    if not error <= rtol:
        own = max_relative_error(reference, reference, feeds, optimized=True)
        record.update(onnxruntime_own_error=own, tolerance=max(rtol, 2 * own))
    if not error <= record["tolerance"]:
        raise ConversionError(f"{what} changed the model's outputs: max relative error {error:.3g} > "
                              f"{record['tolerance']:.3g}")
    return record
