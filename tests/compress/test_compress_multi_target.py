"""One command, one report: TFLite, ONNX and TensorRT-plan artifacts side by side; ONNX models in."""

from __future__ import annotations

import json

import pytest

from tests.conftest import DIGITS_DATA


@pytest.fixture(scope="module")
def all_targets(digits_models, tmp_path_factory):
    from edgekit.cli import main

    out = tmp_path_factory.mktemp("all") / "build"
    with pytest.raises(SystemExit) as exit_info:
        main(["compress", str(digits_models[1]), "--int8", "-c", str(DIGITS_DATA), "--color", "grayscale",
              "-t", "tflite", "-t", "onnx", "-t", "tensorrt", "--out", str(out), "--runs", "5", "--quiet"])
    assert exit_info.value.code == 0
    return out, json.loads((out / "report.json").read_text())


def test_savedmodel_to_three_targets_in_one_report(all_targets):
    out, report = all_targets
    rows = {(a["target"], a["precision"]): a for a in report["artifacts"]}
    assert set(rows) == {("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32"), ("onnx", "int8"),
                         ("tensorrt", "int8")}
    for row in rows.values():
        assert (out / row["path"]).is_file()
        assert row["accuracy"]["top1_agreement"] >= 0.97
        assert row["latency"]["p50_ms"] > 0
    assert rows[("onnx", "int8")]["op_counts"].get("QuantizeLinear", 0) > 0
    assert rows[("onnx", "int8")]["accuracy"]["top1_agreement"] >= 0.99
    trt = rows[("tensorrt", "int8")]["details"]
    assert "trtexec" in trt["trtexec_command"] and "--int8" in trt["trtexec_command"]
    assert (out / trt["calibration_cache"]["path"]).read_text().startswith("TRT-")
    assert trt["engine"]["built"] is False and "no device" in trt["engine"]["reason"]
    assert set(report["fusion"]) == {"tflite", "onnx"}
    assert any("engine not built" in note for note in report["notes"])


def test_onnx_model_in_defaults_to_onnx_target(digits_models, tmp_path, edgekit_cli):
    from edgekit.onnx.export import export_to_onnx

    model = tmp_path / "digits.onnx"
    export_to_onnx(digits_models[1], model)
    result = edgekit_cli("compress", model, "--int8", "-c", DIGITS_DATA, "--color", "grayscale",
                         "--out", tmp_path / "o", "--json", "--runs", "3")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["model"]["format"] == "onnx"
    assert {(a["target"], a["precision"]) for a in report["artifacts"]} == {("onnx", "fp32"), ("onnx", "int8")}
    int8 = [a for a in report["artifacts"] if a["precision"] == "int8"][0]
    assert int8["accuracy"]["accuracy_drop_pts"] <= 1.0
    refused = edgekit_cli("compress", model, "-t", "tflite", "--out", tmp_path / "o2")
    assert refused.code == 2 and "needs a TensorFlow model" in refused.err
