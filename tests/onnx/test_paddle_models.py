"""Real pretrained mobile models exported from another framework: PaddleOCR's MobileNetV3 text
direction classifier (paddle2onnx, opset 11, batch -1 and dynamic H/W, 35 BatchNorm, HardSigmoid)
and its PP-OCRv4 text detector (opset 12), as the rapidocr-onnxruntime wheel ships them
(scripts/setup.sh installs it without dependencies, for these files only). The data are text lines
rendered here with Pillow: the classifier's real task is telling upright text from text turned 180
degrees, and the float model gets it right, so accuracy and agreement mean something."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest


from scripts.models import text_lines as text_lines_script


@pytest.fixture(scope="module")
def paddle_models() -> Path:
    folder = text_lines_script.paddle_models()
    if folder is None:
        message = "rapidocr-onnxruntime is not installed (scripts/setup.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture(scope="module")
def text_lines(tmp_path_factory) -> Path:
    return text_lines_script.write_text_lines(tmp_path_factory.mktemp("text_lines"), 300)


@pytest.fixture(scope="module")
def text_pages(tmp_path_factory) -> Path:
    return text_lines_script.write_text_pages(tmp_path_factory.mktemp("text_pages"), 40)


def _weights_are_int8(path: Path) -> bool:
    """At least 40 DequantizeLinear nodes read int8 initializers (the conv weights)."""
    model = onnx.load(str(path))
    types = {init.name: init.data_type for init in model.graph.initializer}
    int8_reads = [n for n in model.graph.node
                  if n.op_type == "DequantizeLinear" and types.get(n.input[0]) == onnx.TensorProto.INT8]
    return len(int8_reads) >= 40


def test_paddle_text_direction_classifier_to_int8(paddle_models, text_lines, edgekit_cli, tmp_path):
    out = tmp_path / "build"
    result = edgekit_cli(
        "compress", paddle_models / text_lines_script.CLASSIFIER, "--int8", "--target", "onnx",
        "-c", text_lines, "--layout", "nchw", "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5", "--out", out)
    assert result.code == 0, result.err
    fp32, int8 = json.loads((out / "report.json").read_text())["artifacts"]
    steps = fp32["details"]["steps"]
    assert steps["opset"] == {"from": 11, "to": 13}
    assert steps["shapes"]["fixed_inputs"] == {"x": [1, 3, 48, 192]}  # batch -1 and H/W, from the samples
    fused = [g for g in steps["fusion"]["groups"] if g["pass"] == "fold_batchnorm"]
    assert len(fused) == 35 and steps["fusion"]["ops_after"].get("BatchNormalization", 0) == 0
    assert steps["fusion"]["verified"]["max_relative_error"] <= steps["fusion"]["verified"]["tolerance"]
    assert _weights_are_int8(out / int8["path"])
    accuracy = int8["accuracy"]
    assert accuracy["reference_accuracy"] >= 0.85  # the pretrained float model does read the direction
    assert accuracy["top1_agreement"] >= 0.9 and accuracy["accuracy_drop_pts"] <= 10


def test_paddle_text_detector_to_int8(paddle_models, text_pages, edgekit_cli, tmp_path):
    import onnxruntime

    out = tmp_path / "build"
    result = edgekit_cli(
        "compress", paddle_models / text_lines_script.DETECTOR, "--int8", "--target", "onnx",
        "-c", text_pages, "--layout", "nchw", "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225",
        "--out", out)
    assert result.code == 0, result.err
    fp32, int8 = json.loads((out / "report.json").read_text())["artifacts"]
    steps = fp32["details"]["steps"]
    assert steps["opset"] == {"from": 12, "to": 13}
    assert steps["shapes"]["fixed_inputs"] == {"x": [1, 3, 256, 256]}
    assert fp32["accuracy"]["sqnr_db"] > 60 and fp32["accuracy"]["top1_agreement"] is None  # a map, no top-1
    assert _weights_are_int8(out / int8["path"]) and int8["accuracy"]["cosine"] > 0.8
    session = onnxruntime.InferenceSession(str(out / int8["path"]), providers=["CPUExecutionProvider"])
    (prob,) = session.run(None, {"x": np.zeros((1, 3, 256, 256), np.float32)})
    assert prob.shape == (1, 1, 256, 256)
