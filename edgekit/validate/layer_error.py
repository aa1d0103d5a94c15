"""Per-tensor INT8 error, backend-neutral: accumulate float vs dequantized pairs, then summarize.

For one quantized tensor over all samples: RMSE, RMSE divided by the tensor's quantization
scale (in units of one INT8 step), max abs error, cosine, SQNR (dB), and the per-channel range
ratio (largest channel |max| over the median channel |max|, last axis = channels) that flags
scale outliers: one channel far wider than the rest wastes the per-tensor INT8 grid on it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

OUTLIER_RATIO = 16.0  # channel range ratio that costs 4 of INT8's 8 bits for the median channel


@dataclass
class LayerError:
    """Error of one quantized tensor; `node` is the backend's node id, `position` graph order."""

    node: str
    layer: str
    op_type: str
    position: int
    scale: Optional[float]
    rmse: float
    rmse_over_scale: Optional[float]
    max_abs_error: float
    cosine: float
    sqnr_db: Optional[float]
    channel_range_ratio: float
    scale_outlier: bool
    samples: int
    float_min: float = 0.0  # range of the float tensor on the held-out samples
    float_max: float = 0.0
    quant_min: Optional[float] = None  # range the INT8 grid can represent (scale, zero point)
    quant_max: Optional[float] = None
    flags: list[str] = field(default_factory=list)

    def clipped_fraction(self) -> float:
        """How far the held-out float range reaches outside the INT8 range, as a share of it."""
        if self.quant_min is None or self.quant_max is None or self.quant_max <= self.quant_min:
            return 0.0
        outside = max(0.0, self.float_max - self.quant_max) + max(0.0, self.quant_min - self.float_min)
        return outside / (self.quant_max - self.quant_min)

    def to_dict(self) -> dict:
        return asdict(self)


class ErrorAccumulator:
    """Running sums for one tensor: add(float, dequantized) per sample, then summary()."""

    def __init__(self, channels_last: bool = True):
        """channels_last: arrays keep their layout, last axis = channels (False: flattened
        tensors, no channel range ratio)."""
        self.channels_last = channels_last
        self.err_sq = self.sig_sq = self.dot = self.ref_sq = self.test_sq = 0.0
        self.count = self.samples = 0
        self.max_abs = 0.0
        self.low, self.high = math.inf, -math.inf
        self.channel_max: Optional[np.ndarray] = None

    def add(self, ref: np.ndarray, test: np.ndarray) -> None:
        ref = np.asarray(ref, np.float64)
        test = np.asarray(test, np.float64).reshape(ref.shape)
        diff = test - ref
        self.err_sq += float(np.sum(diff**2))
        self.sig_sq += float(np.sum(ref**2))
        self.dot += float(np.sum(ref * test))
        self.test_sq += float(np.sum(test**2))
        self.count += ref.size
        self.samples += 1
        if diff.size:
            self.max_abs = max(self.max_abs, float(np.max(np.abs(diff))))
            self.low, self.high = min(self.low, float(ref.min())), max(self.high, float(ref.max()))
        if self.channels_last and ref.ndim >= 2 and ref.size:
            per_channel = np.max(np.abs(ref.reshape(-1, ref.shape[-1])), axis=0)
            self.channel_max = per_channel if self.channel_max is None else np.maximum(self.channel_max, per_channel)

    def channel_range_ratio(self) -> float:
        if self.channel_max is None or self.channel_max.size < 2:
            return 1.0
        median = float(np.median(self.channel_max))
        top = float(np.max(self.channel_max))
        if median <= 0:
            return math.inf if top > 0 else 1.0
        return top / median

    def summary(self, node: str, layer: str, op_type: str, position: int, scale: Optional[float],
                qrange: Optional[tuple[float, float]] = None) -> LayerError:
        """`qrange`: the float range the INT8 grid covers, (qmin - zp) * scale .. (qmax - zp) * scale."""
        rmse = math.sqrt(self.err_sq / self.count) if self.count else 0.0
        norms = math.sqrt(self.sig_sq * self.test_sq)
        cosine = 1.0 if norms == 0 and self.sig_sq == self.test_sq else (self.dot / norms if norms else 0.0)
        sqnr = None if self.err_sq == 0 else (10 * math.log10(self.sig_sq / self.err_sq) if self.sig_sq else -math.inf)
        ratio = self.channel_range_ratio()
        return LayerError(
            node=node, layer=layer, op_type=op_type, position=position,
            scale=None if scale is None else float(scale), rmse=round(rmse, 8),
            rmse_over_scale=round(rmse / scale, 6) if scale else None,
            max_abs_error=round(self.max_abs, 8), cosine=round(cosine, 8),
            sqnr_db=None if sqnr is None or math.isinf(sqnr) else round(sqnr, 4),
            channel_range_ratio=round(ratio, 3) if math.isfinite(ratio) else 1e9,
            scale_outlier=ratio >= OUTLIER_RATIO, samples=self.samples,
            float_min=self.low if self.samples else 0.0, float_max=self.high if self.samples else 0.0,
            quant_min=qrange[0] if qrange else None, quant_max=qrange[1] if qrange else None,
        )
