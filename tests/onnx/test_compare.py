"""`edgekit compare`: FP32 TFLite vs FP32 ONNX passes; the INT8 gap is reported and fails tight tolerances."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from edgekit.cli.compare import compare
from edgekit.bench.compare import compare_artifacts, fit_layout
from edgekit.errors import CalibrationDataError, GateFailed


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, digits, digits_keras, digits_onnx):
    import tensorflow as tf

    from edgekit.backends.onnx.artifacts import build_onnx_artifacts

    out = tmp_path_factory.mktemp("cmp")
    keras_model = tf.keras.models.load_model(digits_keras[0])
    tflite = out / "digits_fp32.tflite"
    tflite.write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras_model).convert())
    name = onnx.load(str(digits_onnx)).graph.input[0].name
    x_train = digits[0]
    arts = build_onnx_artifacts(digits_onnx, out, precisions=["int8"],
                                calibration_factory=lambda: ({name: x_train[i:i + 1]} for i in range(48)))  # fmt: skip
    data = out / "heldout"
    data.mkdir()
    for i, x in enumerate(digits_keras[1][:40]):
        np.save(data / f"{i:03d}.npy", x)  # [8, 8, 1]: no batch axis, NHWC
    return tflite, arts[0]["path"], arts[1]["path"], data


def test_fp32_tflite_vs_fp32_onnx_passes(artifacts):
    tflite, fp32, _, data = artifacts
    result = compare_artifacts([tflite, fp32], data)
    assert result.passed and result.samples == 40
    (out,) = result.outputs
    assert out.top1_agreement == 1.0 and out.cosine > 0.99999 and out.sqnr_db > 60


def test_int8_gap_is_reported_and_gates(artifacts):
    tflite, fp32, int8, data = artifacts
    runner = CliRunner()
    res = runner.invoke(compare, [str(fp32), str(int8), "--data", str(data), "--json"], standalone_mode=False)
    assert isinstance(res.exception, GateFailed) and res.exception.exit_code == 10
    report = json.loads(res.output)
    gap = report["outputs"][0]
    assert not report["passed"] and gap["top1_agreement"] >= 0.95 and 10 < gap["sqnr_db"] < 60
    loose = runner.invoke(compare, [str(tflite), str(fp32), str(int8), "--data", str(data), "--atol", "10"])
    assert loose.exit_code == 0 and loose.output.count("PASS") == 2


def test_layout_fitting():
    nhwc = np.zeros((1, 8, 6, 3))
    assert fit_layout(nhwc, (1, 3, 8, 6)).shape == (1, 3, 8, 6)
    assert fit_layout(nhwc[0], (-1, 8, 6, 3)).shape == (1, 8, 6, 3)
    with pytest.raises(CalibrationDataError, match="does not fit"):
        fit_layout(np.zeros((5, 5)), (1, 3, 8, 6))


def test_per_output_tolerances_from_a_recipe(artifacts, tmp_path):
    _, fp32, int8, data = artifacts
    out_name = onnx.load(str(fp32)).graph.output[0].name
    recipe = tmp_path / "cmp.yaml"
    recipe.write_text(f"compare:\n  atol: 0.0\n  rtol: 0.0\n  outputs:\n    '{out_name}': {{atol: 10.0}}\n")
    res = CliRunner().invoke(compare, [str(fp32), str(int8), "--data", str(data), "--recipe", str(recipe)],
                             standalone_mode=False)
    assert res.exception is None and "PASS" in res.output
    strict = tmp_path / "strict.yaml"
    strict.write_text("compare:\n  atol: 0.0\n  rtol: 0.0\n")
    res = CliRunner().invoke(compare, [str(fp32), str(int8), "--data", str(data), "--recipe", str(strict)],
                             standalone_mode=False)
    assert isinstance(res.exception, GateFailed)
