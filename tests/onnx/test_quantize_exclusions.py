"""Nodes quantize_qdq never quantizes: a Concat that writes a graph output (a detector head)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgekit.onnx.quantize import OUTPUT_CONCAT, quantize_qdq


def _detector_head() -> onnx.ModelProto:
    """YOLOv8's last node in small: Concat([box pixels = x * 100, class scores = Sigmoid(x)])."""
    nodes = [
        helper.make_node("Mul", ["x", "stride"], ["boxes"], name="boxes"),
        helper.make_node("Sigmoid", ["x"], ["scores"], name="scores"),
        helper.make_node("Concat", ["boxes", "scores"], ["head"], name="head", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 64])],
        [helper.make_tensor_value_info("head", TensorProto.FLOAT, [1, 8, 64])],
        [numpy_helper.from_array(np.float32(100.0), "stride")])  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_an_output_concat_stays_float_so_scores_keep_their_own_scale(tmp_path):
    import onnxruntime

    fp32 = tmp_path / "head.onnx"
    onnx.save(_detector_head(), str(fp32))
    samples = lambda: ({"x": np.random.default_rng(i).normal(0, 2, (1, 4, 64)).astype(np.float32)} for i in range(16))  # noqa: E731
    settings = quantize_qdq(fp32, tmp_path / "int8.onnx", samples)
    assert settings["nodes_excluded_auto"] == {"head": OUTPUT_CONCAT}
    x = next(samples())["x"]
    (head,) = onnxruntime.InferenceSession(str(tmp_path / "int8.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    scores_error = np.abs(head[:, 4:] - 1 / (1 + np.exp(-x))).max()
    # one scale across both parts (about 1400/255) rounded every score to 0 (error 0.998); their own: 1/255
    assert scores_error < 0.01, scores_error
    assert np.abs(head[:, :4] - 100 * x).max() < 3  # the boxes keep theirs
