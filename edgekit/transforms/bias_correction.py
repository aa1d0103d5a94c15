"""Empirical bias correction (Nagel et al. 2019; Finkelstein et al. 2019), backend-neutral.

Quantizing a layer's weights (and everything upstream of it) shifts the mean of its output
channels: E[y_quantized] != E[y_float]. Measured on calibration data, the per-channel shift
E[y_float - y_quantized] is added to the layer's bias, so the quantized layer's output mean
matches float's again. This is the full (empirical) variant: the shift is measured on the real
quantized model's outputs, so it also absorbs what upstream activation quantization moved.
"""

from __future__ import annotations

import numpy as np


class ShiftMeter:
    """Streams (float output, quantized output) batches of one layer; `shift()` is the mean of
    float - quantized per channel (`axis`, default 1: NCHW and [N, C])."""

    def __init__(self, axis: int = 1):
        self.axis = axis
        self.total: np.ndarray | None = None
        self.count = 0

    def update(self, reference: np.ndarray, quantized: np.ndarray) -> None:
        diff = np.moveaxis(np.asarray(reference, np.float64) - np.asarray(quantized, np.float64), self.axis, 0)
        diff = diff.reshape(diff.shape[0], -1)
        self.total = diff.sum(axis=1) if self.total is None else self.total + diff.sum(axis=1)
        self.count += diff.shape[1]

    def shift(self) -> np.ndarray:
        if self.total is None or self.count == 0:
            raise ValueError("no samples measured")
        return self.total / self.count


def corrected_int_bias(bias: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """An integer bias (int32, real value = bias * scale, per channel or one scale) plus `shift`
    (real units), rounded and clipped to int32."""
    info = np.iinfo(np.int32)
    moved = np.asarray(bias, np.float64) + np.round(np.asarray(shift, np.float64) / np.asarray(scale, np.float64))
    return np.clip(moved, info.min, info.max).astype(bias.dtype)
