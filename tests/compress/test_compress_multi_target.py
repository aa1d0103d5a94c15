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
    from edgekit.sources.tf2onnx_export import export_to_onnx

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


def _pytorch_style_onnx(path):
    """What a PyTorch export of a mobile block looks like: NCHW, opset 11, dynamic N/H/W, Conv+BN+
    HardSigmoid*x (hard-swish), GlobalAveragePool, Flatten, Gemm."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def init(name, shape, scale=0.3):
        return numpy_helper.from_array(rng.normal(0, scale, shape).astype(np.float32), name)

    inits = [init("w", (8, 3, 3, 3)), init("fc_w", (5, 8)), init("fc_b", (5,), 0.1),
             numpy_helper.from_array(np.abs(rng.normal(1, 0.1, 8)).astype(np.float32), "gamma"),
             init("beta", (8,), 0.1), init("mean", (8,), 0.1),
             numpy_helper.from_array(np.abs(rng.normal(1, 0.1, 8)).astype(np.float32), "var")]
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2], name="Conv_0"),
        helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["b"], name="BN_1"),
        helper.make_node("HardSigmoid", ["b"], ["hs"], alpha=1 / 6, beta=0.5, name="HardSigmoid_2"),
        helper.make_node("Mul", ["b", "hs"], ["hswish"], name="Mul_3"),
        helper.make_node("GlobalAveragePool", ["hswish"], ["g"], name="GAP_4"),
        helper.make_node("Flatten", ["g"], ["f"], name="Flatten_5"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], transB=1, name="Gemm_6"),
    ]
    graph = helper.make_graph(
        nodes, "torch_mobile", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], producer_name="pytorch")
    model.ir_version = 6
    onnx.save(model, path)


def test_pytorch_style_opset11_dynamic_hw_onnx_compresses_without_surgery(tmp_path, edgekit_cli):
    import numpy as np

    model = tmp_path / "mobile.onnx"
    _pytorch_style_onnx(model)
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(1)
    np.savez(data / "batch.npz", input=rng.random((40, 3, 32, 32), dtype=np.float32))
    result = edgekit_cli("compress", model, "--int8", "-c", data, "--input-shape", "input:1x3x32x32",
                         "--out", tmp_path / "o", "--json", "--runs", "3")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["model"]["fixed_dims"] == {"input": {"from": "?x3x?x?", "to": "1x3x32x32"}}
    fp32, int8 = report["artifacts"]
    assert fp32["details"]["steps"]["opset"]["from"] == 11 and fp32["details"]["steps"]["opset"]["to"] >= 13
    assert fp32["op_counts"]["HardSigmoid"] == 1 and "BatchNormalization" not in fp32["op_counts"]
    assert int8["op_counts"]["QuantizeLinear"] > 0 and int8["op_counts"]["DequantizeLinear"] > 0
    assert fp32["accuracy"]["sqnr_db"] is None or fp32["accuracy"]["sqnr_db"] > 60  # fusion is exact
    assert int8["accuracy"]["sqnr_db"] > 15


def test_calibration_method_auto_keeps_the_best_measured(digits_models, tmp_path, edgekit_cli):
    result = edgekit_cli("compress", digits_models[1], "--int8", "-c", DIGITS_DATA, "--color", "grayscale",
                         "-t", "onnx", "--calibration-method", "auto", "--num-calibration", "100",
                         "--out", tmp_path / "auto", "--json", "--runs", "2")
    assert result.code == 0, result.err
    int8 = [a for a in json.loads(result.out)["artifacts"] if a["precision"] == "int8"][0]
    choice = int8["details"]["steps"]["calibration_method"]
    assert set(choice["candidates"]) == {"minmax", "entropy", "percentile"}
    assert int8["details"]["steps"]["quantization"]["method"] == choice["chosen"]
    best = max(choice["candidates"].values(), key=lambda m: (m["accuracy"], m["top1_agreement"], m["sqnr_db"]))
    assert choice["candidates"][choice["chosen"]] == best
    assert int8["accuracy"]["sqnr_db"] == pytest.approx(best["sqnr_db"], abs=1e-3)


def test_dynamic_hw_taken_from_the_calibration_samples(tmp_path, edgekit_cli):
    """No --input-shape: the PyTorch-style model's dynamic H/W come from the first sample (3x40x24)."""
    import numpy as np

    model = tmp_path / "mobile.onnx"
    _pytorch_style_onnx(model)
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "batch.npz", input=np.random.default_rng(2).random((12, 3, 40, 24), dtype=np.float32))
    result = edgekit_cli("compress", model, "--int8", "-c", data, "--out", tmp_path / "o", "--json", "--runs", "2")
    assert result.code == 0, result.err
    assert json.loads(result.out)["model"]["fixed_dims"] == {"input": {"from": "?x3x?x?", "to": "1x3x40x24"}}


def test_dynamic_hw_keras_from_images_or_a_clear_error(tmp_path, edgekit_cli):
    import keras

    inputs = keras.Input((None, None, 1), name="image")
    outputs = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    path = tmp_path / "dyn.keras"
    keras.Model(inputs, outputs).save(path)
    result = edgekit_cli("compress", path, "--int8", "-c", DIGITS_DATA, "--color", "grayscale",
                         "--out", tmp_path / "o", "--json", "--runs", "2", "--num-calibration", "30")
    assert result.code == 0, result.err
    assert json.loads(result.out)["model"]["fixed_dims"] == {"image": {"from": "?x?x?x1", "to": "1x8x8x1"}}
    no_data = edgekit_cli("compress", path, "--fp16", "--out", tmp_path / "o2")
    assert no_data.code == 2 and "unknown dims" in no_data.err and "--input-shape" in no_data.err
