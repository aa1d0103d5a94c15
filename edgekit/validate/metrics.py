"""Tensor metrics between a reference output and a test output: pure numpy, float64 inside.

Every function takes (reference, test) arrays of the same shape and returns a Python float.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np


def is_class_scores(shape) -> bool:
    """Scores on the last axis: rank 1-3 ([C], [N, C], [N, T, C]) with C > 1. Rank 4 and up are
    spatial maps (NCHW/NHWC), whose last axis is a width: no top-1 there."""
    return 1 <= len(shape) <= 3 and shape[-1] > 1


def _pair(ref, test) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(ref, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if ref.shape != test.shape:
        raise ValueError(f"shape mismatch: reference {ref.shape} vs test {test.shape}")
    return ref, test


def max_abs_error(ref, test) -> float:
    """max |ref - test| (0.0 for empty arrays)."""
    ref, test = _pair(ref, test)
    return float(np.max(np.abs(ref - test))) if ref.size else 0.0


def max_rel_error(ref, test) -> float:
    """max |ref - test| / |ref| over elements; 0/0 counts as 0, x/0 as inf."""
    ref, test = _pair(ref, test)
    if not ref.size:
        return 0.0
    diff = np.abs(ref - test)
    denom = np.abs(ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / denom)
    return float(np.max(rel))


def cosine(ref, test) -> float:
    """Cosine similarity of the flattened arrays; 1.0 when both are all zeros, 0.0 when one is."""
    ref, test = _pair(ref, test)
    a, b = ref.ravel(), test.ravel()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))


def sqnr_db(ref, test) -> float:
    """Signal-to-quantization-noise ratio 10*log10(sum ref^2 / sum (ref-test)^2); inf if identical."""
    ref, test = _pair(ref, test)
    noise = float(np.sum((ref - test) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return float(10.0 * np.log10(signal / noise))


def top1_agreement(ref_batches: Iterable, test_batches: Iterable) -> float:
    """Fraction of rows whose argmax over the last axis agrees; batches are (N, classes) arrays."""
    agree = total = 0
    for ref, test in zip(ref_batches, test_batches, strict=True):
        ref, test = _pair(ref, test)
        if ref.ndim == 0:
            raise ValueError("top-1 needs at least one class axis")
        a = ref.reshape(-1, ref.shape[-1]).argmax(axis=-1)
        b = test.reshape(-1, test.shape[-1]).argmax(axis=-1)
        agree += int(np.sum(a == b))
        total += a.size
    if total == 0:
        raise ValueError("top-1 agreement of zero samples")
    return agree / total


def log_prob_noise(ref_rows, test_rows, floor: float = 1e-3) -> float | None:
    """Mean squared difference of natural-log probabilities over the entries where the reference
    is >= `floor` (default 1e-3: the classes in contention), test clipped at floor / 10; rows are
    [positions, classes] probabilities (each row sums to 1). None when the reference is not such
    a distribution. Where a near tie decides a position, this moves with the noise on its
    contenders; the squared error of the probabilities jumps when the tie flips."""
    from edgekit.validate.roles import probability_axis

    ref, test = _pair(ref_rows, test_rows)
    if ref.ndim != 2 or probability_axis(ref, [1]) is None:
        return None
    contenders = ref >= floor
    if not contenders.any():
        return None
    diff = np.log(np.maximum(test[contenders], floor / 10)) - np.log(ref[contenders])
    return float(np.mean(diff**2))
