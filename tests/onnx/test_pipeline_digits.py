"""Acceptance: a Keras CNN (Conv+BN+ReLU) trained on real data -> ONNX -> fused -> INT8 QDQ."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgekit.backends.onnx.artifacts import build_onnx_artifacts
from edgekit.backends.tensorrt.plan import build_tensorrt_plan, finish_plan
from edgekit.runtime.onnx import OnnxRunner


def _factory(name, x):
    return lambda: ({name: x[i : i + 1]} for i in range(len(x)))


@pytest.fixture(scope="module")
def built(tmp_path_factory, digits, digits_onnx):
    x_train = digits[0]
    name = onnx.load(str(digits_onnx)).graph.input[0].name
    out = tmp_path_factory.mktemp("built")
    arts = build_onnx_artifacts(digits_onnx, out, precisions=["int8", "fp16"],
                                calibration_factory=_factory(name, x_train[:64]))  # fmt: skip
    return arts, name, out


def test_fusion_report_lists_fusions(built):
    fusion = built[0][0]["steps"]["fusion"]
    assert fusion["fusions"].get("fuse_matmul_add") == 1  # the Dense head became a Gemm
    assert fusion["ops_after"].get("Gemm") == 1 and "MatMul" not in fusion["ops_after"]
    assert fusion["verified"]["max_relative_error"] < 1e-4


def test_int8_agrees_with_fp32_on_held_out_digits(built, digits_keras):
    arts, name, _ = built
    _, x_test, y_test = digits_keras
    fp32, int8, fp16 = (OnnxRunner(a["path"], threads=1) for a in arts)
    ops = {n.op_type for n in onnx.load(arts[1]["path"]).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    ref = np.concatenate([fp32.run({name: x_test[i : i + 1]})[fp32.outputs[0].name] for i in range(len(x_test))])
    q = np.concatenate([int8.run({name: x_test[i : i + 1]})[int8.outputs[0].name] for i in range(len(x_test))])
    h = fp16.run({name: x_test[:1]})[fp16.outputs[0].name]
    agreement = float(np.mean(ref.argmax(1) == q.argmax(1)))
    assert agreement >= 0.99, agreement
    assert float(np.mean(ref.argmax(1) == y_test)) > 0.9
    np.testing.assert_allclose(h, ref[:1], atol=2e-2)
    assert arts[1]["steps"]["quantization"]["per_channel"] is True


def test_tensorrt_plan_without_device(built, digits):
    arts, name, out = built
    plan = build_tensorrt_plan(arts[0]["path"], out, calibration_factory=_factory(name, digits[0][:32]))
    assert "--int8" in plan["trtexec_command"] and "--saveEngine=" in plan["trtexec_command"]
    plan |= finish_plan(plan["path"], arts[0]["path"])
    assert plan["engine"] == {"built": False, "reason": plan["engine"]["reason"]}
    layers = plan["precisions"]["layers"]  # every conv/matmul of the plain plan computes in INT8
    assert layers and {layer["precision"] for layer in layers} == {"int8"}
    assert plan["precisions"]["mac_share"] == {"int8": 1.0}
    text = (out / plan["calibration_cache"]["path"]).read_text().splitlines()
    assert text[0] == "TRT-8602-EntropyCalibration2"
    fp32 = onnx.load(arts[0]["path"]).graph
    tensors = {i.name for i in fp32.input} | {o for n in fp32.node for o in n.output}
    cached = {line.rsplit(": ", 1)[0] for line in text[1:]}
    assert cached and cached <= tensors
    assert all(len(line.rsplit(": ", 1)[1]) == 8 for line in text[1:])
    model = onnx.load(plan["path"])
    zero_points = [onnx.numpy_helper.to_array(i) for i in model.graph.initializer if "zero_point" in i.name]
    assert any(z.dtype == np.int8 for z in zero_points)
    assert not any(z.dtype == np.uint8 for z in zero_points)
    assert all(not z.any() for z in zero_points)  # symmetric: every zero point is 0


def test_tensorrt_plan_records_a_float_node_as_fp16(built, digits):
    """A node kept out of QDQ (what the float fallback does) runs in FP16 on the engine: the
    record says so, with its MAC share."""
    arts, name, out = built
    fp32 = onnx.load(arts[0]["path"]).graph
    first = next(n for n in fp32.node if n.op_type in ("Conv", "MatMul", "Gemm"))
    (out / "excluded").mkdir(exist_ok=True)
    plan = build_tensorrt_plan(arts[0]["path"], out / "excluded", calibration_factory=_factory(name, digits[0][:32]),
                               nodes_to_exclude=[first.name])
    record = finish_plan(plan["path"], arts[0]["path"])["precisions"]
    by_node = {layer["node"]: layer["precision"] for layer in record["layers"]}
    assert by_node[first.name] == "fp16" and list(by_node.values()).count("int8") == len(by_node) - 1
    assert 0 < record["mac_share"]["fp16"] < 1 and record["counts"]["fp16"] == 1
