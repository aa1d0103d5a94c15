"""A real mobile architecture: MobileNetV3Small (weights=None) exported at opset 11 with dynamic
H/W (BatchNorm, HardSigmoid/HardSwish) compresses to INT8 without manual graph surgery."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgekit.errors import CalibrationDataError, ConversionError
from edgekit.sources.tf2onnx_export import condense_error, export_to_onnx


@pytest.mark.slow
def test_mobilenetv3_opset11_dynamic_hw(tmp_path):
    import tensorflow as tf

    from edgekit.backends.onnx.artifacts import build_onnx_artifacts

    model = tf.keras.applications.MobileNetV3Small(weights=None, input_shape=(None, None, 3), classes=10)
    model.save(tmp_path / "mnv3.keras")
    src = tmp_path / "mnv3.onnx"
    assert export_to_onnx(tmp_path / "mnv3.keras", src, opset=11)["opset"] == 11
    graph = onnx.load(str(src)).graph
    name = graph.input[0].name
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim][1:3] == [0, 0]  # dynamic H/W
    rng = np.random.default_rng(0)
    data = [rng.uniform(0, 255, (1, 96, 96, 3)).astype(np.float32) for _ in range(8)]
    arts = build_onnx_artifacts(src, tmp_path, precisions=["int8"], calibration_factory=lambda: ({name: d} for d in data),
                                input_shapes={name: [1, 96, 96, 3]})  # fmt: skip
    steps = arts[0]["steps"]
    assert steps["opset"] == {"from": 11, "to": 13}
    assert steps["shapes"]["fixed_inputs"] == {name: [1, 96, 96, 3]}
    assert steps["fusion"]["verified"]["max_relative_error"] < 1e-4
    # Keras 3 lowers hard_sigmoid/hard_swish to Clip(x + 3, 0, 6) * (1/6): they arrive as Clip/Mul/Add
    assert {"Clip", "Mul", "Add", "Conv"} <= set(steps["fusion"]["ops_before"])
    assert arts[1]["precision"] == "int8" and arts[1]["steps"]["quantization"]["calibration_samples"] == 8


def test_calibration_names_must_match(tmp_path):
    from edgekit.backends.onnx.artifacts import build_onnx_artifacts
    from tests.onnx.models import conv_bn_model

    onnx.save(conv_bn_model(), tmp_path / "m.onnx")
    bad = lambda: iter([{"images": np.zeros((1, 1, 8, 8), np.float32)}])  # noqa: E731
    with pytest.raises(CalibrationDataError, match=r"inputs \['images'\], but the model's inputs are \['input'\]"):
        build_onnx_artifacts(tmp_path / "m.onnx", tmp_path, calibration_factory=bad)


def test_tf2onnx_failure_is_condensed(tmp_path):
    assert condense_error("blah\nValueError: Unsupported ops: Counter({'FancyOp': 1})") .startswith("tf2onnx cannot")
    assert condense_error("x\nsomething broke at the end") == "tf2onnx failed: something broke at the end"
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(ConversionError) as err:
        export_to_onnx(tmp_path / "saved", tmp_path / "out.onnx")
    assert "\n" not in str(err.value)
