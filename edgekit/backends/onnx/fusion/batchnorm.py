"""Fold inference-mode BatchNormalization into the Conv, ConvTranspose or Gemm that feeds it.

y = gamma * (x - mean) / sqrt(var + eps) + beta is per output channel affine, so it is absorbed
by scaling the producer's weights along its output-channel axis and rewriting its bias. Only
done when the producer's output feeds the BatchNormalization alone and all parameters are
constants; new initializers are created so shared weights stay untouched.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from edgekit.backends.onnx.fusion.report import FusedGroup
from edgekit.backends.onnx.graph import (
    add_initializer,
    attribute,
    bias_vector,
    constant_value,
    consumers,
    graph_output_names,
    initializer_map,
    producers,
    single_reader,
)

PASS = "fold_batchnorm"


def _bn_affine(graph, bn, inits) -> tuple[np.ndarray, np.ndarray] | None:
    if len(bn.output) > 1 and any(bn.output[1:]):
        return None  # training mode outputs
    params = [constant_value(graph, name, inits) for name in bn.input[1:5]]
    if len(params) != 4 or any(p is None for p in params):
        return None
    gamma, beta, mean, var = (p.astype(np.float64) for p in params)
    scale = gamma / np.sqrt(var + attribute(bn, "epsilon", 1e-5))
    return scale, beta - mean * scale


def _fold_conv(graph, conv, scale, shift, inits) -> bool:
    weight = constant_value(graph, conv.input[1], inits)
    if weight is None or weight.dtype.kind != "f":
        return False
    bias = constant_value(graph, conv.input[2], inits) if len(conv.input) > 2 and conv.input[2] else None
    if len(conv.input) > 2 and conv.input[2] and bias is None:
        return False
    w = weight.astype(np.float64)
    if conv.op_type == "Conv":
        if w.shape[0] != scale.size:
            return False
        w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    else:  # ConvTranspose: W is [C_in, C_out/group, k...], output channel = g * C_out/group + j
        group = attribute(conv, "group", 1)
        per_group = w.shape[1]
        if group * per_group != scale.size:
            return False
        w = w.reshape((group, w.shape[0] // group, per_group) + w.shape[2:])
        w = w * scale.reshape((group, 1, per_group) + (1,) * (w.ndim - 3))
        w = w.reshape(weight.shape)
    b = np.zeros(scale.size) if bias is None else bias.astype(np.float64)
    new_w = add_initializer(graph, f"{conv.name}_bnfold_W", w.astype(weight.dtype))
    new_b = add_initializer(graph, f"{conv.name}_bnfold_B", (b * scale + shift).astype(weight.dtype))
    del conv.input[1:]
    conv.input.extend([new_w, new_b])
    return True


def _fold_gemm(graph, gemm, scale, shift, inits) -> bool:
    b = constant_value(graph, gemm.input[1], inits)
    if b is None or b.ndim != 2 or b.dtype.kind != "f":
        return False
    c = constant_value(graph, gemm.input[2], inits) if len(gemm.input) > 2 and gemm.input[2] else None
    if len(gemm.input) > 2 and gemm.input[2] and c is None:
        return False
    alpha, beta = attribute(gemm, "alpha", 1.0), attribute(gemm, "beta", 1.0)
    trans_b = attribute(gemm, "transB", 0)
    n_out = b.shape[0] if trans_b else b.shape[1]
    if n_out != scale.size:
        return False
    new_b = b.astype(np.float64) * (scale[:, None] if trans_b else scale[None, :]) * alpha
    c64 = np.zeros(n_out) if c is None else beta * c.astype(np.float64)
    new_c = np.broadcast_to(c64 * scale + shift, np.broadcast_shapes(c64.shape, scale.shape))
    vector = bias_vector(new_c, n_out)  # [N] when the same for every row (see fuse_matmul_add)
    new_c = new_c if vector is None else vector
    names = [
        add_initializer(graph, f"{gemm.name}_bnfold_B", new_b.astype(b.dtype)),
        add_initializer(graph, f"{gemm.name}_bnfold_C", np.ascontiguousarray(new_c).astype(b.dtype)),
    ]
    del gemm.input[1:]
    gemm.input.extend(names)
    for attr in list(gemm.attribute):
        if attr.name in ("alpha", "beta"):
            gemm.attribute.remove(attr)
    gemm.attribute.extend([helper.make_attribute("alpha", 1.0), helper.make_attribute("beta", 1.0)])
    return True


_FOLDERS = {"Conv": _fold_conv, "ConvTranspose": _fold_conv, "Gemm": _fold_gemm}


def run(model: onnx.ModelProto) -> list[FusedGroup]:
    graph = model.graph
    groups = []
    for bn in [n for n in graph.node if n.op_type == "BatchNormalization"]:
        inits = initializer_map(graph)
        producer = producers(graph).get(bn.input[0])
        if producer is None or producer.op_type not in _FOLDERS:
            continue
        if single_reader(consumers(graph), bn.input[0], graph_output_names(graph)) is not bn:
            continue
        affine = _bn_affine(graph, bn, inits)
        if affine is None or not _FOLDERS[producer.op_type](graph, producer, *affine, inits):
            continue
        producer.output[0] = bn.output[0]
        graph.node.remove(bn)
        groups.append(FusedGroup(PASS, (producer.name, bn.name), f"{producer.op_type} {producer.name!r}"))
    return groups
