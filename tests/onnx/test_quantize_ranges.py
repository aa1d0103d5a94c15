"""quantize_qdq's ranges cache: one calibration serves many builds (the float-fallback search)."""

from __future__ import annotations

import numpy as np
import onnx

from edgekit.backends.onnx.shapes import fix_input_shapes
from edgekit.backends.onnx.quantize import quantize_qdq
from tests.onnx.models import conv_bn_model


def _samples(gain: float):
    return lambda: ({"input": gain * np.random.default_rng(i).normal(size=(1, 1, 8, 8)).astype(np.float32)}
                    for i in range(24))


def test_cached_ranges_are_reused_and_match_a_fresh_calibration(tmp_path):
    fp32 = tmp_path / "fp32.onnx"
    onnx.save(fix_input_shapes(conv_bn_model())[0], str(fp32))
    cache = tmp_path / "ranges.json"
    quantize_qdq(fp32, tmp_path / "first.onnx", _samples(1.0), ranges_cache=cache)
    assert cache.is_file()
    # the data now differ 10x: with the cache, the ranges (and so the bytes) are the first run's
    quantize_qdq(fp32, tmp_path / "cached.onnx", _samples(10.0), ranges_cache=cache)
    quantize_qdq(fp32, tmp_path / "fresh.onnx", _samples(10.0))
    first, cached, fresh = ((tmp_path / f"{n}.onnx").read_bytes() for n in ("first", "cached", "fresh"))
    assert cached == first and fresh != first
