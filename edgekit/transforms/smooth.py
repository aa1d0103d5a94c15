"""Activation smoothing (Xiao et al. 2023, "SmoothQuant"), backend-neutral: the strength per tensor.

A tensor x read only by linear layers (conv, matmul) computes the same function when its channel
c is divided by s_c and every reader's input channel c is multiplied by s_c. With
s_c = max|x_c|^alpha / max|w_c|^(1 - alpha) an outlier channel's range moves from the one
per-tensor INT8 grid of x (every channel pays for it) to the readers' per-output-channel weight
grids. Too strong a move makes the weights the worse half, so the strength is measured: each
alpha of ALPHAS is scored by the W8A8 error of the readers' outputs on calibration activations
(the rounding noise of an asymmetric 8-bit grid over the calibrated min/max, and the error of
symmetric per-output-channel int8 weights on the activations: the ONNX quantizer's defaults),
against no smoothing. The adapters (`backends.onnx.smooth`) find the tensors, fold 1/s into
their producers and s into the readers.
"""

from __future__ import annotations

import numpy as np

ALPHAS = (0.25, 0.5, 0.75)
# auto: smooth a tensor only where the best strength cuts its readers' W8A8 error this many times
# (the error is measured on 2048 activation rows: a margin before rewriting the graph). Over it:
# 6 of the PP-OCRv4 recognizer's 22 foldable conv/matmul inputs (1.5-4.6x), 5 in PaddleOCR's classifier,
# 14 in the PP-OCRv4 detector, and the planted x400 channel of the tests (64553x)
AUTO_MIN_GAIN = 1.5
MIN_RANGE = 1e-8


def fake_quant_weights(w: np.ndarray) -> np.ndarray:
    """w [out, ...] on a symmetric int8 grid per output row."""
    scale = np.abs(w).reshape(w.shape[0], -1).max(axis=1) / 127.0
    scale = np.where(scale > 0, scale, 1.0).reshape(-1, *[1] * (w.ndim - 1))
    return np.clip(np.round(w / scale), -127, 127) * scale


def rounding_error(x: np.ndarray, low: np.ndarray, high: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The error of x / scales on an asymmetric 8-bit grid over its calibrated range (`low`, `high`:
    each channel's min and max before scaling; the grid always holds 0)."""
    lo = min(float(np.min(low / scales)), 0.0)
    hi = max(float(np.max(high / scales)), 0.0)
    step = (hi - lo) / 255.0
    if step <= 0:
        return np.zeros_like(x)
    zero = np.round(-lo / step)
    xs = x / scales
    return (np.clip(np.round(xs / step) + zero, 0, 255) - zero) * step - xs


def w8a8_error(tensors: list[tuple[np.ndarray, tuple]], readers: list[np.ndarray],
               scales: np.ndarray | None = None) -> float:
    """Noise power / signal power of the readers' outputs when x (divided by `scales`) and each
    reader's weights [out, C, taps] (multiplied by them) are INT8. `tensors`: (rows [n, C], (min,
    max) per channel over the calibration samples) of x first, then of the tensors that carry the
    same scale into x (an Add of a constant passes their rounding error on); a tensor whose rows
    are not x's positions adds its error as independent noise."""
    x = tensors[0][0]
    s = np.ones(x.shape[1]) if scales is None else scales
    error = np.zeros_like(x)
    independent = 0.0
    for rows, (low, high) in tensors:
        e = rounding_error(rows, low, high, s)
        if rows.shape == x.shape:
            error += e
        else:
            independent += float(np.mean(np.square(e)))
    noise = signal = 0.0
    for w in readers:
        ws = w * s[None, :, None]
        wq = fake_quant_weights(ws)
        noise += independent * float(np.square(wq).sum())
        for tap in range(w.shape[2]):
            exact = x @ w[:, :, tap].T
            noise += float(np.mean(np.square((x / s + error) @ wq[:, :, tap].T - exact), axis=0).sum())
            signal += float(np.mean(np.square(exact), axis=0).sum())
    return noise / max(signal, 1e-30)


def smoothing_scales(x_range: np.ndarray, readers: list[np.ndarray], alpha: float) -> np.ndarray:
    """s_c = max|x_c|^alpha / max|w_c|^(1 - alpha) over every reader, normalized to a geometric
    mean of 1; 1 where either side of channel c is (near) zero."""
    w_range = np.max([np.abs(w).max(axis=(0, 2)) for w in readers], axis=0)
    ok = (x_range > MIN_RANGE) & (w_range > MIN_RANGE)
    s = np.where(ok, np.where(ok, x_range, 1.0) ** alpha / np.where(ok, w_range, 1.0) ** (1 - alpha), 1.0)
    return s / np.exp(np.mean(np.log(s)))


def choose(tensors: list[tuple[np.ndarray, tuple]], readers: list[np.ndarray], mode: str = "auto"
           ) -> tuple[np.ndarray | None, dict]:
    """(the scales to apply or None, a record): the alpha of ALPHAS with the least W8A8 error of
    the readers' outputs (`w8a8_error`: `tensors`' first is the one smoothed); "auto" (default)
    applies it only where it cuts the error AUTO_MIN_GAIN (1.5) times, "on" wherever it cuts it."""
    tensors = [(np.asarray(rows, np.float64), (np.asarray(low, np.float64), np.asarray(high, np.float64)))
               for rows, (low, high) in tensors]
    readers = [np.asarray(w, np.float64) for w in readers]
    low, high = tensors[0][1]
    peak = np.maximum(np.abs(low), np.abs(high))
    before = w8a8_error(tensors, readers)
    tried = {alpha: smoothing_scales(peak, readers, alpha) for alpha in ALPHAS}
    errors = {alpha: w8a8_error(tensors, readers, s) for alpha, s in tried.items()}
    alpha = min(errors, key=errors.get)
    gain = before / max(errors[alpha], 1e-30)
    record = {"alpha": alpha, "error_before": before, "error_after": errors[alpha], "gain": round(gain, 3),
              "channels": int(tensors[0][0].shape[1])}
    apply = gain > (AUTO_MIN_GAIN if mode == "auto" else 1.0) and mode != "off"
    if apply:
        record.update(scale_min=float(tried[alpha].min()), scale_max=float(tried[alpha].max()))
    return (tried[alpha] if apply else None), record
