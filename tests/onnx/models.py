"""Small ONNX models built with onnx.helper for the tests (deterministic, seeded per call)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def _bn(rng, prefix, channels, inp, out):
    inits = [
        _init(f"{prefix}_gamma", rng.uniform(0.5, 1.5, channels)),
        _init(f"{prefix}_beta", rng.normal(0, 0.1, channels)),
        _init(f"{prefix}_mean", rng.normal(0, 0.1, channels)),
        _init(f"{prefix}_var", rng.uniform(0.5, 1.5, channels)),
    ]
    node = helper.make_node(
        "BatchNormalization", [inp] + [i.name for i in inits], [out], name=f"{prefix}_bn", epsilon=1e-3
    )
    return node, inits


def conv_bn_model(*, opset: int = 13, dynamic: bool = True, seed: int = 0, classes: int = 10) -> onnx.ModelProto:
    """Conv+BN+ReLU x2, ConvTranspose+BN, a shape subgraph to flatten, MatMul+Add, Gemm+BN,
    Identity, Dropout, a cancelling Transpose pair and a no-op Reshape. Input NCHW [N,1,8,8]."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    batch = "N" if dynamic else 1
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 1, 8, 8])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])
    inits += [_init("w1", rng.normal(0, 0.5, (8, 1, 3, 3))), _init("b1", rng.normal(0, 0.1, 8))]
    nodes.append(helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]))
    bn, extra = _bn(rng, "bn1", 8, "c1", "n1")
    nodes += [bn, helper.make_node("Relu", ["n1"], ["r1"], name="relu1")]
    inits += extra
    inits.append(_init("w2", rng.normal(0, 0.3, (16, 8, 3, 3))))
    nodes.append(helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1], strides=[2, 2]))
    bn, extra = _bn(rng, "bn2", 16, "c2", "n2")
    nodes += [bn, helper.make_node("Relu", ["n2"], ["r2"], name="relu2")]
    inits += extra
    inits.append(_init("wt", rng.normal(0, 0.3, (16, 4, 2, 2))))
    nodes.append(helper.make_node("ConvTranspose", ["r2", "wt"], ["ct"], name="deconv", strides=[2, 2], group=2))
    bn, extra = _bn(rng, "bn3", 8, "ct", "n3")
    nodes += [bn, helper.make_node("Identity", ["n3"], ["id1"], name="identity")]
    inits += extra
    # a transpose pair that cancels, then a no-op reshape to the same static shape
    nodes.append(helper.make_node("Transpose", ["id1"], ["t1"], name="to_nhwc", perm=[0, 2, 3, 1]))
    nodes.append(helper.make_node("Transpose", ["t1"], ["t2"], name="to_nchw", perm=[0, 3, 1, 2]))
    nodes.append(helper.make_node("GlobalAveragePool", ["t2"], ["gap"], name="gap"))
    # flatten through a shape subgraph: [Shape(gap)[0], -1]
    inits += [numpy_helper.from_array(np.array([0], np.int64), "idx0"),
              numpy_helper.from_array(np.array([-1], np.int64), "minus1")]  # fmt: skip
    nodes += [
        helper.make_node("Shape", ["gap"], ["gap_shape"], name="shape"),
        helper.make_node("Gather", ["gap_shape", "idx0"], ["batch"], name="gather", axis=0),
        helper.make_node("Concat", ["batch", "minus1"], ["flat_shape"], name="concat", axis=0),
        helper.make_node("Reshape", ["gap", "flat_shape"], ["flat"], name="flatten"),
        helper.make_node("Dropout", ["flat"], ["drop"], name="dropout"),
    ]
    inits += [_init("fc_w", rng.normal(0, 0.5, (8, 12))), _init("fc_b", rng.normal(0, 0.1, 12))]
    nodes += [
        helper.make_node("MatMul", ["drop", "fc_w"], ["mm"], name="fc_matmul"),
        helper.make_node("Add", ["mm", "fc_b"], ["fc"], name="fc_add"),
    ]
    inits += [_init("g_w", rng.normal(0, 0.5, (classes, 12))), _init("g_b", rng.normal(0, 0.1, classes))]
    nodes.append(helper.make_node("Gemm", ["fc", "g_w", "g_b"], ["g"], name="head", transB=1, alpha=0.9, beta=1.1))
    bn, extra = _bn(rng, "bn4", classes, "g", "logits")
    nodes.append(bn)
    inits += extra
    graph = helper.make_graph(nodes, "conv_bn", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model
