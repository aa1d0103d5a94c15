"""Every fusion pass on a graph that ENDS in its pattern, then quantized per-channel and per-tensor.

The fused node must keep the graph output's name, and what it leaves (a Gemm bias of shape [1, N]
from tf2onnx's Dense) must still be quantizable by onnxruntime (issue #10, bug 1).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgekit.backends.onnx.fusion.runner import fuse
from edgekit.backends.onnx.fusion.verify import max_relative_error
from tests.onnx.tail_models import TAILS, UNITS


def _feeds(model, count, seed):
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(size=dims).astype(np.float32)} for _ in range(count)]


@pytest.fixture(scope="module", params=sorted(TAILS))
def fused_tail(request, tmp_path_factory):
    """(name, float model, fused model path) of one tail pattern."""
    build, expected = TAILS[request.param]
    model = build(np.random.default_rng(0))
    fused, report = fuse(model)
    fired = set(report.counts_by_pass())
    assert expected in fired, (request.param, fired)
    if request.param == "matmul_add_bias_mxn":  # a bias per row is no Gemm bias onnxruntime can quantize
        assert [n.op_type for n in fused.graph.node][-2:] == ["MatMul", "Add"]
    assert [o.name for o in fused.graph.output] == ["y"]
    assert max_relative_error(model, fused, _feeds(model, 3, 1)) < 1e-4
    path = tmp_path_factory.mktemp(request.param) / "fused.onnx"
    onnx.save(fused, str(path))
    return request.param, model, path


@pytest.mark.parametrize("per_channel", [True, False], ids=["per_channel", "per_tensor"])
def test_fused_tail_quantizes(fused_tail, per_channel, tmp_path):
    from edgekit.backends.onnx.quantize import quantize_qdq

    name, model, path = fused_tail
    out = tmp_path / "int8.onnx"
    feeds = _feeds(model, 16, 2)
    settings = quantize_qdq(path, out, lambda: iter(feeds), per_channel=per_channel)
    assert settings["per_channel"] is per_channel
    quantized = onnx.load(str(out))
    assert "QuantizeLinear" in {n.op_type for n in quantized.graph.node}, name
    # on calibrated inputs (nothing clipped), INT8 of one or two layers is close to float
    assert max_relative_error(model, quantized, feeds[:4]) < 0.1, name


def test_gemm_bias_is_one_dimensional_after_fusion():
    """The fused Gemm's bias is [N] (onnxruntime's per-channel bias code indexes it per channel)."""
    from edgekit.backends.onnx.graph import constant_value

    for name in ("matmul_add_bias_1xn", "matmul_add_bias_1x1", "matmul_add_bias_scalar", "gemm_1xn_bias_bn",
                 "gemm_1xn_bias"):
        fused, _ = fuse(TAILS[name][0](np.random.default_rng(0)))
        gemm = fused.graph.node[-1]
        assert gemm.op_type == "Gemm" and list(gemm.output) == ["y"], name
        assert constant_value(fused.graph, gemm.input[2]).shape == (UNITS,), name


@pytest.mark.parametrize("bias_shape", [(2, UNITS), (2, 1)], ids=["per_row", "per_row_column"])
def test_gemm_with_a_per_row_bias_is_kept_float_per_channel(bias_shape, tmp_path):
    """A source Gemm's [M, N] / [M, 1] bias (M > 1) cannot become 1-D: onnxruntime's per-channel QDQ
    fails on it, so that Gemm is left in float (recorded) instead of failing the build."""
    from onnx import TensorProto, helper, numpy_helper

    from edgekit.backends.onnx.quantize import quantize_qdq

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, UNITS)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(size=bias_shape).astype(np.float32), "c")]
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w", "c"], ["y"], name="/rows/Gemm")], "rows",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, UNITS])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    fused, _ = fuse(model)
    path = tmp_path / "rows.onnx"
    onnx.save(fused, str(path))
    feeds = _feeds(fused, 8, 2)
    settings = quantize_qdq(path, tmp_path / "int8.onnx", lambda: iter(feeds), per_channel=True)
    assert list(settings["nodes_excluded_auto"]) == ["/rows/Gemm"]
    assert "not 1-D" in settings["nodes_excluded_auto"]["/rows/Gemm"]
    assert max_relative_error(fused, onnx.load(str(tmp_path / "int8.onnx")), feeds[:2]) < 0.1
