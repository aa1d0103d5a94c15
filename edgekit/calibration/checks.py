"""Does the calibration set look representative? Three measured checks, one warning line each.

1. too few samples: fewer than `min_samples` (default 100);
2. near-constant inputs: per input, the spread across samples (mean over elements of the
   per-element standard deviation across samples) is below `min_spread` (default 1%) of the
   input's RMS value; streamed (memory = one sample);
3. held-out ranges outside the calibrated ranges: a quantized tensor whose float range on the
   held-out samples reaches outside the range its INT8 grid represents by more than
   `max_clipped` (default 25%) of that range; the tensor and its layer are named.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from edgekit.validate.layer_error import LayerError

MIN_SAMPLES = 100
MIN_SPREAD = 0.01
MAX_CLIPPED = 0.25


class _Spread:
    """Welford per element across samples."""

    def __init__(self):
        self.n = 0
        self.mean = self.m2 = None
        self.sq = 0.0

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float64).ravel()
        self.n += 1
        if self.mean is None:
            self.mean, self.m2 = np.zeros_like(x), np.zeros_like(x)
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)
        self.sq += float(np.mean(x**2))

    def relative(self) -> float:
        if self.n < 2:
            return 0.0
        rms = (self.sq / self.n) ** 0.5
        spread = float(np.mean(np.sqrt(self.m2 / (self.n - 1))))
        return spread / rms if rms > 0 else 0.0


def calibration_warnings(calibration: Iterable[dict[str, np.ndarray]], layer_errors: Sequence[LayerError] = (), *,
                         min_samples: int = MIN_SAMPLES, min_spread: float = MIN_SPREAD,
                         max_clipped: float = MAX_CLIPPED) -> list[str]:
    """Warnings (empty when none) for the streamed calibration feeds and the per-layer errors
    measured on held-out samples (`tflite_layer_errors` / `onnx_layer_errors`)."""
    warnings = []
    spreads: dict[str, _Spread] = {}
    settings: dict[str, bool] = {}  # small integer inputs (a sample rate, a flag): constant on purpose
    count = 0
    for feeds in calibration:
        count += 1
        for name, value in feeds.items():
            spreads.setdefault(name, _Spread()).add(value)
            settings[name] = settings.get(name, True) and value.dtype.kind in "biu" and value.size <= 16
    if count < min_samples:
        warnings.append(f"only {count} calibration sample(s) (fewer than {min_samples}): "
                        "INT8 ranges may not cover real inputs")
    for name, spread in sorted(spreads.items()):
        relative = spread.relative()
        if count >= 2 and relative < min_spread and not settings[name]:
            warnings.append(f"calibration input '{name}' is nearly constant across samples (spread "
                            f"{relative:.2%} of its RMS): calibrate on real, varied inputs")
    for error in layer_errors:
        clipped = error.clipped_fraction()
        if clipped > max_clipped:
            warnings.append(
                f"held-out activations of '{error.layer}' (tensor {error.node}) span "
                f"[{error.float_min:.4g}, {error.float_max:.4g}], {clipped:.0%} beyond the calibrated range "
                f"[{error.quant_min:.4g}, {error.quant_max:.4g}]: the calibration set misses inputs like these")
    return warnings
