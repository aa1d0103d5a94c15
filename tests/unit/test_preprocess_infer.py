"""Preprocessing inferred from the model (no TensorFlow): ONNX input chains, integer inputs,
metadata_props, layouts; and the probe's choice rule."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.calibration.preprocess import image_geometry, layout_from_shape
from edgekit.errors import CalibrationDataError
from edgekit.preprocessing.infer import infer_from_model
from edgekit.preprocessing.probe import Candidate, pick
from edgekit.recipe.schema import Preprocess
from edgekit.runtime.base import TensorSpec
from edgekit.sources.base import PreparedSource

MEAN, STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)


def _onnx_source(tmp_path, chain, shape=(1, 3, 8, 8), dtype=TensorProto.FLOAT, props=None):
    """x -> chain of (op, constant) -> Conv -> y, saved; a PreparedSource over it."""
    nodes, inits, tensor = [], [], "x"
    if dtype != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT))
        tensor = "xf"
    for i, (op, value) in enumerate(chain):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), f"c{i}"))
        nodes.append(helper.make_node(op, [tensor, f"c{i}"], [f"t{i}"], name=f"/norm/{op}_{i}"))
        tensor = f"t{i}"
    channels = shape[1]
    inits.append(numpy_helper.from_array(np.ones((4, channels, 3, 3), np.float32), "w"))
    nodes.append(helper.make_node("Conv", [tensor, "w"], ["y"], name="/conv/Conv"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", dtype, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, "h", "w"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in (props or {}).items():
        model.metadata_props.add(key=key, value=value)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    dtype_name = {TensorProto.FLOAT: "float32", TensorProto.UINT8: "uint8", TensorProto.INT8: "int8"}[dtype]
    return PreparedSource("onnx", [TensorSpec("x", shape, dtype_name)], [], lambda f: {}, onnx_path=path)


def test_imagenet_normalization_on_raw_pixels_inside_an_onnx_graph(tmp_path):
    source = _onnx_source(tmp_path, [("Sub", (MEAN * 255).reshape(1, 3, 1, 1)), ("Div", (STD * 255).reshape(1, 3, 1, 1))])
    found = infer_from_model(source)
    assert found.values == {"layout": "nchw", "color": "rgb", "scale": 1.0, "offset": 0.0}
    assert "Sub" in found.inside_model or "norm" in found.inside_model


@pytest.mark.parametrize("chain, scale, offset", [
    ([("Mul", 1 / 255)], 1.0, 0.0),                          # Rescaling(1/255): raw pixels in
    ([("Div", 127.5), ("Sub", 1.0)], 1.0, 0.0),              # raw -> [-1, 1] inside
    ([("Sub", MEAN.reshape(1, 3, 1, 1)), ("Div", STD.reshape(1, 3, 1, 1))], 1 / 255, 0.0),  # expects [0, 1]
    ([("Mul", 2.0), ("Sub", 1.0)], 1 / 255, 0.0),            # [0, 1] -> [-1, 1] inside
])
def test_the_chain_says_which_input_range_the_model_takes(tmp_path, chain, scale, offset):
    found = infer_from_model(_onnx_source(tmp_path, chain))
    assert (found.values["scale"], found.values["offset"]) == pytest.approx((scale, offset))
    assert found.inside_model


def test_no_chain_and_a_shared_input_infer_no_range(tmp_path):
    assert "scale" not in infer_from_model(_onnx_source(tmp_path, [])).values


@pytest.mark.parametrize("dtype, offset", [(TensorProto.UINT8, 0.0), (TensorProto.INT8, -128.0)])
def test_integer_inputs_take_raw_pixels(tmp_path, dtype, offset):
    found = infer_from_model(_onnx_source(tmp_path, [], shape=(1, 8, 8, 3), dtype=dtype))
    assert found.values == {"layout": "nhwc", "color": "rgb", "scale": 1.0, "offset": offset}


def test_onnx_metadata_props_declare_the_preprocessing(tmp_path):
    props = {"edgekit.preprocess": json.dumps({"color": "bgr", "scale": 1.0, "offset": 0.0, "mean": [1, 2, 3],
                                                "std": [1, 1, 1], "evil": "x"})}
    found = infer_from_model(_onnx_source(tmp_path, [], props=props))
    assert found.values["color"] == "bgr" and found.values["mean"] == [1, 2, 3] and "evil" not in found.values


@pytest.mark.parametrize("shape, want", [
    ((1, 224, 224, 3), ("nhwc", 3)), ((1, 3, 224, 224), ("nchw", 3)), ((1, 28, 28, 1), ("nhwc", 1)),
    ((1, 1, 28, 28), ("nchw", 1)), ((1, None, None, 3), ("nhwc", 3)), ((1, 3, None, None), ("nchw", 3)),
    ((1, 8, 8, 16), None), ((1, 64), None),
])
def test_layout_from_shape(shape, want):
    assert layout_from_shape(shape) == want


def test_a_four_channel_input_is_refused_for_images():
    with pytest.raises(CalibrationDataError, match="4 channels .*RGBA.*npy"):
        image_geometry(TensorSpec("x", (1, 8, 8, 4), "float32"), Preprocess(), "img.png")


def test_pick_keeps_the_inferred_value_unless_another_is_clearly_better():
    current = Candidate("current", Preprocess(), accuracy=0.95, nll=0.20)
    noisy = Candidate("noisy", Preprocess(scale=1.0), accuracy=0.98, nll=0.45)  # +3 pts: noise
    assert pick(current, [current, noisy], 0.05) is current
    sharper = Candidate("sharper", Preprocess(color="bgr"), accuracy=0.95, nll=0.10)
    assert pick(current, [current, noisy, sharper], 0.05) is sharper
    much = Candidate("much", Preprocess(scale=2 / 255, offset=-1), accuracy=0.99, nll=0.5)
    worse = Candidate("worse", Preprocess(), accuracy=0.30, nll=2.0)
    assert pick(worse, [worse, much], 0.05) is much


def test_keras_applications_conventions_by_model_name(tmp_path):
    import zipfile

    from edgekit.preprocessing.infer import Inferred, _from_keras_application

    expected = {"mobilenetv2_0.35_96": (2 / 255, -1.0, "rgb"), "resnet50v2": (2 / 255, -1.0, "rgb"),
                "resnet50": (1.0, 0.0, "bgr"), "densenet121": (1 / 255, 0.0, "rgb"), "my_cnn": None}
    for name, want in expected.items():
        path = tmp_path / f"{name}.keras"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", json.dumps({"class_name": "Functional", "config": {"name": name}}))
        found = Inferred(values={"color": "rgb"})
        _from_keras_application(path, found)
        if want is None:
            assert "scale" not in found.values, name
        else:
            got = found.values["scale"], found.values["offset"], found.values["color"]
            assert got == (pytest.approx(want[0]), want[1], want[2]), name


def test_the_float_sanity_check_reads_the_primary_output_and_refuses_chance(caplog):
    from edgekit.preprocessing.resolve import Resolution, check_float_accuracy

    rng = np.random.default_rng(0)
    labels = [i % 10 for i in range(50)]
    outputs = [{"a_offsets": rng.normal(size=(1, 12)), "probs": np.eye(10)[[label]]} for label in labels]
    res = Resolution(Preprocess(), {"scale": "default"})
    assert check_float_accuracy(res, labels, outputs, "data/", False, primary="probs")["accuracy"] == 1.0
    with pytest.raises(CalibrationDataError, match=r"data/: the float model scores .* chance is 10.0% \(10 classes\)"):
        check_float_accuracy(res, labels, outputs, "data/", False)  # first by name: the offsets
    assert check_float_accuracy(res, labels, outputs, "data/", True)["accuracy"] < 0.15
    assert check_float_accuracy(res, [None] * 50, outputs, "data/", False) is None
    assert "preprocessing is unverified" in caplog.text
