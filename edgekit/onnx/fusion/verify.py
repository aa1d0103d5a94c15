"""Numerical check of a rewrite: run both models in onnxruntime on the same real inputs."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from edgekit.errors import ConversionError


def _session(model):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def max_relative_error(reference, candidate, feeds: Iterable[dict[str, np.ndarray]]) -> float:
    """Largest |ref - cand| / max(|ref|) over every output and feed (per-output normalization).

    Both are onnx ModelProtos with the same output names. Normalizing by each output's largest
    magnitude keeps near-zero elements from dominating, as `np.allclose` with rtol would not.
    """
    ref_sess, cand_sess = _session(reference), _session(candidate)
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


def check_equivalent(reference, candidate, feeds, *, rtol: float = 1e-4, what: str = "fusion") -> float:
    """max_relative_error, raising ConversionError when it exceeds `rtol` (default 1e-4)."""
    error = max_relative_error(reference, candidate, feeds)
    if not error <= rtol:
        raise ConversionError(f"{what} changed the model's outputs: max relative error {error:.3g} > {rtol:g}")
    return error
