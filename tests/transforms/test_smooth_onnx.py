"""Activation smoothing (SmoothQuant) of hand-built ONNX graphs: the float function is unchanged,
the INT8 build loses less where one channel of a conv's input is an outlier, and a tensor whose
1/s cannot fold into the graph is left alone."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.backends.onnx.smooth import smooth_onnx
from edgekit.transforms.smooth import choose

OUTLIER = 3  # the channel of t that is 60x the others


def _affine_chain(share: bool = False, t_output: bool = False, extra_reader: str | None = None):
    """x [1,4,8,8] -> Conv 3x3 (16) -> Relu -> Mul a -> Add b = t -> Conv 1x1 (8) = y, where the
    per-channel scale `a` (a LayerScale, a BatchNorm left unfolded) makes t's channel OUTLIER 60x
    (the 1x1's input channel /60: the function of an ordinary net); share: `a` is also read by a
    second Mul (its output z); extra_reader: an op that also reads t (output w)."""
    rng = np.random.default_rng(0)
    w1 = rng.normal(size=(16, 4, 3, 3)).astype(np.float32) * 0.3
    a = np.full((1, 16, 1, 1), 1.5, np.float32)
    a[0, OUTLIER] *= 60
    w2 = rng.normal(size=(8, 16, 1, 1)).astype(np.float32)
    w2[:, OUTLIER] /= 60
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(rng.normal(size=16).astype(np.float32), "b1"),
             numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(a, "a"),
             numpy_helper.from_array(np.array([0.25], np.float32), "b")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Mul", ["r", "a"], ["m"], name="scale"),
             helper.make_node("Add", ["m", "b"], ["t"], name="shift"),
             helper.make_node("Conv", ["t", "w2"], ["y"], name="conv2")]
    outputs = ["y"]
    if share:
        nodes.append(helper.make_node("Mul", ["c", "a"], ["z"], name="other_user"))
        outputs.append("z")
    if extra_reader:
        nodes.append(helper.make_node(extra_reader, ["t"], ["w"], name="extra"))
        outputs.append("w")
    if t_output:
        outputs.append("t")
    return _model(nodes, inits, outputs)


def _gated():
    """x -> Conv 3x3 = u (channel OUTLIER 60x) -> t = u * Sigmoid(Conv_se(GlobalAveragePool(u)))
    -> Conv 1x1 = y: 1/s goes into conv1, s into the 1x1 and into the squeeze-excite conv."""
    rng = np.random.default_rng(1)
    w1 = rng.normal(size=(16, 4, 3, 3)).astype(np.float32) * 0.3
    w1[OUTLIER] *= 60
    wse = rng.normal(size=(16, 16, 1, 1)).astype(np.float32) * 0.2
    wse[:, OUTLIER] /= 60
    w2 = rng.normal(size=(8, 16, 1, 1)).astype(np.float32)
    w2[:, OUTLIER] /= 60
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(wse, "wse"), numpy_helper.from_array(w2, "w2")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["u"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["u"], ["p"], name="pool"),
             helper.make_node("Conv", ["p", "wse"], ["q"], name="squeeze"),
             helper.make_node("Sigmoid", ["q"], ["g"], name="gate"),
             helper.make_node("Mul", ["g", "u"], ["t"], name="excite"),
             helper.make_node("Conv", ["t", "w2"], ["y"], name="conv2")]
    return _model(nodes, inits, ["y"])


def _model(nodes, inits, outputs):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], inits)
    return onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _samples(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(size=(1, 4, 8, 8)).astype(np.float32)} for _ in range(n)]


CALIBRATION = _samples(32, 2)
INPUTS = {"x": np.dtype("float32")}


def _run(model, feeds):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [session.run(None, f) for f in feeds]


def _smooth(model, mode="auto"):
    return smooth_onnx(model, lambda: iter(CALIBRATION), INPUTS, mode)


@pytest.mark.parametrize("build, tensor, region", [(_affine_chain, "t", 2), (_gated, "t", 3)])
def test_the_outlier_channel_moves_into_the_weights_and_the_function_is_unchanged(build, tensor, region):
    model = build()
    feeds = _samples(4, 3)
    before = _run(model, feeds)
    records = _smooth(model)
    assert [r["tensor"] for r in records] == [tensor], records
    assert records[0]["region_tensors"] == region and records[0]["gain"] > 1.5
    assert records[0]["scale_max"] / records[0]["scale_min"] > 5  # the outlier channel's scale stands out
    for a, b in zip(before, _run(model, feeds)):
        for x, y in zip(a, b):
            np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-4 * np.abs(x).max())


@pytest.mark.parametrize("build", [_affine_chain, _gated])
def test_the_int8_build_loses_less(build, tmp_path):
    from edgekit.backends.onnx.quantize import quantize_qdq

    plain, smoothed = build(), build()
    assert _smooth(smoothed)
    held_out = _samples(16, 4)
    reference = np.concatenate([r[0] for r in _run(plain, held_out)])
    noise = {}
    for name, model in (("plain", plain), ("smoothed", smoothed)):
        onnx.save(model, tmp_path / f"{name}.onnx")
        quantize_qdq(tmp_path / f"{name}.onnx", tmp_path / f"{name}_int8.onnx", lambda: iter(CALIBRATION))
        got = np.concatenate([r[0] for r in _run(onnx.load(tmp_path / f"{name}_int8.onnx"), held_out)])
        noise[name] = float(np.mean((got - reference) ** 2) / np.mean(reference ** 2))
    assert noise["smoothed"] < noise["plain"] / 2, noise


def test_a_constant_that_varies_per_channel_is_quantized_per_channel(tmp_path):
    """1/s makes the Add's scalar a per-channel vector, and `a` stays one: one per-tensor INT8 grid
    would round the small channels off, so each channel gets its own scale (exact at +-127)."""
    from edgekit.backends.onnx.quantize import quantize_qdq

    model = _affine_chain()
    _smooth(model)
    onnx.save(model, tmp_path / "m.onnx")
    quantize_qdq(tmp_path / "m.onnx", tmp_path / "q.onnx", lambda: iter(CALIBRATION))
    quantized = onnx.load(tmp_path / "q.onnx")
    inits = {i.name: numpy_helper.to_array(i) for i in quantized.graph.initializer}
    for name in ("a", "b"):
        dq = next(n for n in quantized.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == f"{name}_quantized")
        assert inits[dq.input[0]].dtype == np.int8 and np.all(np.abs(inits[dq.input[0]]) == 127), name
        assert inits[dq.input[1]].size == 16 and any(a.name == "axis" and a.i == 1 for a in dq.attribute)


def test_a_shared_constant_is_copied_before_it_changes():
    model = _affine_chain(share=True)
    feeds = _samples(2, 5)
    before = _run(model, feeds)
    assert [r["tensor"] for r in _smooth(model)] == ["t"]
    np.testing.assert_array_equal(numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "a")),
                                  numpy_helper.to_array(next(i for i in _affine_chain().graph.initializer
                                                             if i.name == "a")))
    for a, b in zip(before, _run(model, feeds)):
        np.testing.assert_allclose(b[1], a[1], rtol=1e-6)  # the other Mul still reads the scalar
        np.testing.assert_allclose(b[0], a[0], rtol=1e-4, atol=1e-4 * np.abs(a[0]).max())


@pytest.mark.parametrize("kwargs, why", [
    ({"t_output": True}, "t is a graph output: its values are the model's"),
    ({"extra_reader": "Sigmoid"}, "t is also read by a Sigmoid, which does not commute with a scale"),
])
def test_a_tensor_whose_scale_cannot_fold_is_left_alone(kwargs, why):
    model = _affine_chain(**kwargs)
    assert _smooth(model) == [], why


def test_off_changes_nothing_and_auto_needs_a_gain():
    model = _affine_chain()
    assert _smooth(model, "off") == []
    rng = np.random.default_rng(6)
    x = rng.normal(size=(512, 16))  # no outlier channel: nothing worth moving
    readers = [rng.normal(size=(8, 16, 1))]
    scales, record = choose([(x, (x.min(axis=0), x.max(axis=0)))], readers)
    assert scales is None and record["gain"] < 1.5
