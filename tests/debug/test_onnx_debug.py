"""edgekit debug --target onnx on the hostile model exported with tf2onnx (onnxruntime QDQ)."""

from __future__ import annotations

import json

from tests.conftest import DIGITS_DATA


def test_onnx_report_and_fallback(hostile_keras, planted, tmp_path, edgekit_cli_module):
    out = tmp_path / "out"
    result = edgekit_cli_module("debug", hostile_keras, "--int8", "--calibration", DIGITS_DATA, "--color",
                                "grayscale", "--quiet", "--target", "onnx", "--out", out, "--max-accuracy-drop", "1")
    assert result.code == 0, result.err
    doc = json.loads((out / "debug.json").read_text())
    assert doc["target"] == "onnx" and doc["int8"]["accuracy_drop_pts"] > 3.0
    assert {r["layer"] for r in doc["ranking"][:2]} == planted and set(doc["culprits"]) == planted
    fb = doc["fallback"]
    assert fb["met"] and set(fb["float_layers"]) == planted
    assert fb["final"]["accuracy"]["accuracy_drop_pts"] <= 1.0
    import onnx

    model = onnx.load(str(out / "model_int8_fallback.onnx"))
    float_weights = {i.name for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    float_convs = {n.name for n in convs if n.input[1] in float_weights}  # weight not behind a DequantizeLinear
    assert len(float_convs) == 2 and all("outlier" in name for name in float_convs)
    assert len(convs) - len(float_convs) >= 3
