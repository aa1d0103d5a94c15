"""Empirical bias correction on a real onnxruntime QDQ model where per-tensor weights shift means."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from edgekit.transforms.bias_correction import ShiftMeter, corrected_int_bias
from tests.conftest import DIGITS_DATA, load_script


def test_shift_meter_and_int_bias():
    meter = ShiftMeter(axis=1)
    ref = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    meter.update(ref, ref - np.array([0.5, -1.0, 0.0], np.float32)[None, :, None])
    meter.update(ref, ref - np.array([0.5, -1.0, 0.0], np.float32)[None, :, None])
    np.testing.assert_allclose(meter.shift(), [0.5, -1.0, 0.0])
    bias = corrected_int_bias(np.array([10, -3, 2**31 - 2], np.int32), np.array([0.25, 0.5, 1.0]),
                              np.array([1.0, -1.0, 9.0]))
    assert bias.dtype == np.int32 and list(bias) == [14, -5, 2**31 - 1]  # clipped, not wrapped
    with pytest.raises(ValueError):
        ShiftMeter().shift()


def _digits(name: str):
    from PIL import Image

    files = sorted(DIGITS_DATA.glob("*.png"))
    images = [np.asarray(Image.open(f), np.float32)[None, :, :, None] / 255 for f in files]
    return [{name: x} for x in images[:300]], [{name: x} for x in images[300:]]


def _sqnr(session, feeds, reference) -> float:
    got = np.concatenate([session.run(None, f)[0] for f in feeds])
    return float(10 * np.log10(np.sum(reference ** 2) / np.sum((got - reference) ** 2)))


def test_bias_correction_recovers_the_mean_shift_of_per_tensor_weights(tmp_path):
    """A depthwise channel x24 (and its pointwise consumer /24: float unchanged) makes per-tensor
    weight steps 24x coarser for the other channels; folding the measured shift back gains SQNR."""
    import onnxruntime as ort

    from edgekit.backends.onnx.artifacts import prepare_fp32
    from edgekit.backends.onnx.bias_correction import correct_biases
    from edgekit.sources.tf2onnx_export import export_to_onnx
    from edgekit.backends.onnx.quantize import quantize_qdq

    _, model = load_script("outlier_models").outlier_cnn()
    dw, pw = model.get_layer("dw2"), model.get_layer("pw2")
    kernel, bias = dw.get_weights()
    kernel[:, :, 2, :] *= 24
    bias[2] *= 24
    dw.set_weights([kernel, bias])
    pw_kernel, pw_bias = pw.get_weights()
    pw_kernel[:, :, 2, :] /= 24
    pw.set_weights([pw_kernel, pw_bias])
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(str(tmp_path / "saved"))
    export_to_onnx(tmp_path / "saved", tmp_path / "src.onnx")
    name = ort.InferenceSession(str(tmp_path / "src.onnx")).get_inputs()[0].name
    calibration, validation = _digits(name)
    fp32, plain, corrected = tmp_path / "fp32.onnx", tmp_path / "int8.onnx", tmp_path / "corrected.onnx"
    prepare_fp32(tmp_path / "src.onnx", fp32, calibration_factory=lambda: iter(calibration))
    quantize_qdq(fp32, plain, lambda: iter(calibration), per_channel=False)
    record = correct_biases(fp32, plain, corrected, lambda: iter(calibration))
    reference = np.concatenate([ort.InferenceSession(str(fp32)).run(None, f)[0] for f in validation])
    before = _sqnr(ort.InferenceSession(str(plain)), validation, reference)
    after = _sqnr(ort.InferenceSession(str(corrected)), validation, reference)
    assert record["layers"] == 4 and record["max_shift"] > 0
    assert after > before + 3.0, (before, after)  # measured: 18.5 -> 28.9 dB (the pipeline's split: 21.2 -> 25.4)
