"""The ONNX adapter of cross-layer equalization on hand-built graphs, run in onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.backends.onnx.equalize import equalize_onnx, find_pairs


def _graph(between: list[tuple[str, dict]], extra_output: bool = False, share: bool = False, groups: int = 1):
    """x [1,4,8,8] -> Conv(8, 3x3) -> BETWEEN ops -> Conv(8 or depthwise) -> y; channel 2 x300 / 300."""
    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(size=(8, 4, 3, 3)).astype(np.float32), rng.normal(size=8).astype(np.float32)
    w1[2] *= 300
    b1[2] *= 300
    w2 = rng.normal(size=(8, 8 // groups, 1, 1)).astype(np.float32)
    if groups == 1:
        w2[:, 2] /= 300
    else:  # depthwise: channel 2 is its own output channel
        w2[2] /= 300
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"), numpy_helper.from_array(w2, "w2")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["t0"], name="producer", pads=[1, 1, 1, 1])]
    for i, (op, attrs) in enumerate(between):
        nodes.append(helper.make_node(op, [f"t{i}"], [f"t{i + 1}"], name=f"{op}_{i}", **attrs))
    last = f"t{len(between)}"
    nodes.append(helper.make_node("Conv", [last, "w2"], ["y"], name="consumer", group=groups))
    if share:
        nodes.append(helper.make_node("Conv", [last, "w2"], ["z"], name="sharer", group=groups))
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                for n in (["t1"] if extra_output else []) + (["z"] if share else [])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              outputs, inits)
    return onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _run(model, x):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})


RELU_POOL = [("Relu", {}), ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]})]


@pytest.mark.parametrize("groups", [1, 8])
def test_relu_and_maxpool_between_are_equalized_and_outputs_unchanged(groups):
    model = _graph(RELU_POOL, groups=groups)
    x = np.random.default_rng(1).normal(size=(1, 4, 8, 8)).astype(np.float32)
    before = _run(model, x)
    records = equalize_onnx(model, "auto")
    assert [r["pair"] for r in records] == ["producer -> consumer"] and records[0]["spread_before"] > 100
    for a, b in zip(before, _run(model, x)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * np.abs(a).max())
    hidden = np.abs(numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "w1")))
    assert hidden.reshape(8, -1).max(axis=1).max() < 20 * np.median(hidden.reshape(8, -1).max(axis=1))


@pytest.mark.parametrize("between, why", [
    ([("Clip", {}), ("MaxPool", {"kernel_shape": [2, 2]})], "Clip (ReLU6) is not positively homogeneous"),
    ([("Sigmoid", {})], "Sigmoid is not"),
])
def test_non_homogeneous_ops_stop_the_pair(between, why):
    assert find_pairs(_graph(between).graph) == [], why


def test_a_graph_output_or_a_shared_weight_inside_the_pair_stops_it():
    assert find_pairs(_graph(RELU_POOL, extra_output=True).graph) == []  # t1 is read outside
    assert find_pairs(_graph(RELU_POOL, share=True).graph) == []  # w2 read by two convs
    model = _graph(RELU_POOL)
    assert equalize_onnx(model, "off") == [] and len(find_pairs(model.graph)) == 1
