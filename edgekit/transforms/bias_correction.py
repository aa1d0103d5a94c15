"""Empirical bias correction (Nagel et al. 2019; Finkelstein et al. 2019), backend-neutral.

Quantizing a layer's weights shifts the mean of its output channels. Measured on calibration
data, the per-channel shift is added to the layer's bias, so the quantized layer's output mean
matches float's again. ONNX (backends/onnx/bias_correction.py) measures the shift its INT8
weights alone cause on the layer's real input; TFLite measures E[y_float - y_quantized] on the
layer's output, which also absorbs what upstream activation quantization moved (on PaddleOCR's
models that made ONNX far worse, which is why ONNX no longer does). `ShiftMeter` streams either.
"""

from __future__ import annotations

import numpy as np


class ShiftMeter:
    """Streams (float output, quantized output) batches of one layer; `shift()` is the mean of
    float - quantized per channel (`axis`, default 1: NCHW and [N, C]).

    Each batch (a calibration sample) contributes its per-channel mean; a channel whose mean
    shift is within `significance` (default 2) standard errors of 0 over the samples is left at
    0: correcting noise would only add error.
    """

    def __init__(self, axis: int = 1, significance: float = 2.0):
        self.axis = axis
        self.significance = significance
        self.total: np.ndarray | None = None
        self.squares: np.ndarray | None = None
        self.count = 0

    def update(self, reference: np.ndarray, quantized: np.ndarray) -> None:
        diff = np.moveaxis(np.asarray(reference, np.float64) - np.asarray(quantized, np.float64), self.axis, 0)
        mean = diff.reshape(diff.shape[0], -1).mean(axis=1)
        if self.total is None:
            self.total, self.squares = np.zeros_like(mean), np.zeros_like(mean)
        self.total += mean
        self.squares += mean ** 2
        self.count += 1

    def shift(self) -> np.ndarray:
        if self.total is None or self.count == 0:
            raise ValueError("no samples measured")
        mean = self.total / self.count
        if self.count < 2:
            return mean
        variance = np.maximum(self.squares / self.count - mean ** 2, 0) * self.count / (self.count - 1)
        error = np.sqrt(variance / self.count)
        return np.where(np.abs(mean) > self.significance * error, mean, 0.0)


def corrected_int_bias(bias: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """An integer bias (int32, real value = bias * scale, per channel or one scale) plus `shift`
    (real units), rounded and clipped to int32."""
    info = np.iinfo(np.int32)
    moved = np.asarray(bias, np.float64) + np.round(np.asarray(shift, np.float64) / np.asarray(scale, np.float64))
    return np.clip(moved, info.min, info.max).astype(bias.dtype)
