"""Small graphs that END in one fusion pattern (built with onnx.helper, seeded by the caller).

The last node of a graph is where rewrites break: the fused node must keep the graph output's
name, and what it leaves must still be quantizable by onnxruntime (issue #10).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FEATURES, UNITS = 6, 5


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def _model(nodes, inits, x_shape, y_shape, output="y"):
    graph = helper.make_graph(nodes, "tail", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, y_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


def dense_tail(rng, bias_shape, batch=1):
    """x [batch, 6] -> MatMul+Add+Relu -> MatMul + Add(bias of `bias_shape`) as the graph output."""
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="/dense/MatMul"),
             helper.make_node("Add", ["h", "b1"], ["h1"], name="/dense/BiasAdd"),
             helper.make_node("Relu", ["h1"], ["h2"], name="/dense/Relu"),
             helper.make_node("MatMul", ["h2", "w2"], ["m"], name="/head/MatMul"),
             helper.make_node("Add", ["m", "b2"], ["y"], name="/head/BiasAdd")]
    inits = [_init("w1", rng.normal(size=(FEATURES, 8))), _init("b1", rng.normal(size=8)),
             _init("w2", rng.normal(size=(8, UNITS))), _init("b2", rng.normal(size=bias_shape))]
    return _model(nodes, inits, [batch, FEATURES], [batch, UNITS])


def _conv_prefix(rng, out="c"):
    """x [1, 3, 6, 6] -> Conv(4 channels, bias) -> `out`."""
    inits = [_init("cw", rng.normal(size=(4, 3, 3, 3))), _init("cb", rng.normal(size=4))]
    return [helper.make_node("Conv", ["x", "cw", "cb"], [out], name="/conv/Conv", pads=[1, 1, 1, 1])], inits


def _bn(rng, inp, channels, out="y"):
    inits = [_init("gamma", rng.uniform(0.5, 1.5, channels)), _init("beta", rng.normal(0, 0.1, channels)),
             _init("mean", rng.normal(0, 0.1, channels)), _init("var", rng.uniform(0.5, 1.5, channels))]
    node = helper.make_node("BatchNormalization", [inp, "gamma", "beta", "mean", "var"], [out], name="/bn/BN")
    return node, inits


def _conv_bn(rng):
    nodes, inits = _conv_prefix(rng)
    bn, extra = _bn(rng, "c", 4)
    return _model(nodes + [bn], inits + extra, [1, 3, 6, 6], [1, 4, 6, 6])


def _deconv_bn(rng):
    nodes, inits = _conv_prefix(rng)
    inits.append(_init("tw", rng.normal(size=(4, 3, 2, 2))))
    nodes.append(helper.make_node("ConvTranspose", ["c", "tw"], ["t"], name="/deconv/ConvTranspose", strides=[2, 2]))
    bn, extra = _bn(rng, "t", 3)
    return _model(nodes + [bn], inits + extra, [1, 3, 6, 6], [1, 3, 12, 12])


def _gemm_tail(rng, bias_shape, bn=True):
    """x [1, 6] -> Gemm (transB, bias of `bias_shape`) [-> BatchNormalization] as the output."""
    inits = [_init("gw", rng.normal(size=(UNITS, FEATURES))), _init("gb", rng.normal(size=bias_shape))]
    nodes = [helper.make_node("Gemm", ["x", "gw", "gb"], ["g" if bn else "y"], name="/fc/Gemm", transB=1)]
    if bn:
        node, extra = _bn(rng, "g", UNITS)
        nodes, inits = nodes + [node], inits + extra
    return _model(nodes, inits, [1, FEATURES], [1, UNITS])


def _identity_tail(rng, op):
    nodes, inits = _conv_prefix(rng)
    nodes.append(helper.make_node(op, ["c"], ["y"], name=f"/out/{op}"))
    return _model(nodes, inits, [1, 3, 6, 6], [1, 4, 6, 6])


def _constant_tail(rng):
    """Conv + Add(Mul(two initializers)) as the output: the Mul folds to a constant bias."""
    nodes, inits = _conv_prefix(rng)
    inits += [_init("s1", rng.normal(size=(1, 4, 1, 1))), _init("s2", rng.normal(size=(1, 4, 1, 1)))]
    nodes += [helper.make_node("Mul", ["s1", "s2"], ["s"], name="/shift/Mul"),
              helper.make_node("Add", ["c", "s"], ["y"], name="/shift/Add")]
    return _model(nodes, inits, [1, 3, 6, 6], [1, 4, 6, 6])


def _transpose_tail(rng, second_perm):
    nodes, inits = _conv_prefix(rng)
    nodes += [helper.make_node("Transpose", ["c"], ["t"], name="/to_nhwc/Transpose", perm=[0, 2, 3, 1]),
              helper.make_node("Transpose", ["t"], ["y"], name="/back/Transpose", perm=second_perm)]
    shape = [[1, 4, 6, 6][i] for i in [[0, 2, 3, 1][p] for p in second_perm]]
    return _model(nodes, inits, [1, 3, 6, 6], shape)


def _reshape_tail(rng, restore):
    nodes, inits = _conv_prefix(rng)
    inits += [numpy_helper.from_array(np.array([1, 144], np.int64), "flat"),
              numpy_helper.from_array(np.array([1, 4, 6, 6] if restore else [1, 4, 36], np.int64), "back")]
    nodes += [helper.make_node("Reshape", ["c", "flat"], ["r"], name="/flatten/Reshape"),
              helper.make_node("Reshape", ["r", "back"], ["y"], name="/unflatten/Reshape")]
    return _model(nodes, inits, [1, 3, 6, 6], [1, 4, 6, 6] if restore else [1, 4, 36])


def _noop_reshape_tail(rng):
    nodes, inits = _conv_prefix(rng)
    inits.append(numpy_helper.from_array(np.array([1, 4, 6, 6], np.int64), "same"))
    nodes.append(helper.make_node("Reshape", ["c", "same"], ["y"], name="/same/Reshape"))
    return _model(nodes, inits, [1, 3, 6, 6], [1, 4, 6, 6])


# name -> (builder, the pass that must fire on the tail)
TAILS = {
    "matmul_add_bias_n": (lambda r: dense_tail(r, (UNITS,)), "fuse_matmul_add"),
    "matmul_add_bias_1xn": (lambda r: dense_tail(r, (1, UNITS)), "fuse_matmul_add"),  # tf2onnx's Dense
    "matmul_add_bias_1x1": (lambda r: dense_tail(r, (1, 1)), "fuse_matmul_add"),
    "matmul_add_bias_scalar": (lambda r: dense_tail(r, ()), "fuse_matmul_add"),
    "matmul_add_bias_mxn": (lambda r: dense_tail(r, (2, UNITS), batch=2), "fuse_matmul_add"),  # head kept
    "conv_bn": (_conv_bn, "fold_batchnorm"),
    "deconv_bn": (_deconv_bn, "fold_batchnorm"),
    "gemm_bn": (lambda r: _gemm_tail(r, (UNITS,)), "fold_batchnorm"),
    "gemm_1xn_bias_bn": (lambda r: _gemm_tail(r, (1, UNITS)), "fold_batchnorm"),
    "gemm_1xn_bias": (lambda r: _gemm_tail(r, (1, UNITS), bn=False), "fuse_matmul_add"),  # source Gemm
    "identity": (lambda r: _identity_tail(r, "Identity"), "eliminate_identity"),
    "dropout": (lambda r: _identity_tail(r, "Dropout"), "eliminate_identity"),
    "constant_bias": (_constant_tail, "fold_constants"),
    "transpose_cancel": (lambda r: _transpose_tail(r, [0, 3, 1, 2]), "cancel_reshape_transpose"),
    "transpose_merge": (lambda r: _transpose_tail(r, [0, 2, 1, 3]), "cancel_reshape_transpose"),
    "reshape_restore": (lambda r: _reshape_tail(r, True), "cancel_reshape_transpose"),
    "reshape_pair": (lambda r: _reshape_tail(r, False), "cancel_reshape_transpose"),
    "reshape_noop": (_noop_reshape_tail, "cancel_reshape_transpose"),
}


def dense_tail_files(directory: Path, bias_shape=(1, UNITS), samples: int = 40) -> tuple[Path, Path]:
    """(model.onnx, calibration dir of one stacked .npy) for the tf2onnx-style Dense tail."""
    model_path, data = directory / "dense.onnx", directory / "calibration"
    data.mkdir(parents=True, exist_ok=True)
    onnx.save(dense_tail(np.random.default_rng(0), bias_shape), str(model_path))
    np.save(data / "x.npy", np.random.default_rng(1).normal(size=(samples, FEATURES)).astype(np.float32))
    return model_path, data
