"""Issue #10 bug 4: ops inside `If` were never quantized. An If whose condition follows from
constants, or from inputs every calibration sample holds at one value, folds to its branch (a
verified fusion pass); otherwise the report says how many ops stay float in control flow."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgekit.errors import ConversionError
from edgekit.backends.onnx.artifacts import build_onnx_artifacts
from edgekit.backends.onnx.fusion.fold_if import held_inputs
from edgekit.backends.onnx.fusion.runner import fuse
from edgekit.backends.onnx.fusion.verify import check_equivalent
from edgekit.backends.onnx.shapes import fix_input_shapes
from edgekit.backends.onnx.target import control_flow_notes
from tests.onnx.stateful import HIDDEN, SAMPLES, stream, streaming_model

SHAPES = {"input": [1, SAMPLES], "state": [2, 1, HIDDEN], "sr": []}
BRANCH_OPS = 16  # non-Constant nodes in each branch


def _build(tmp_path, samples):
    path = tmp_path / "vad.onnx"
    onnx.save(streaming_model(), path)
    return build_onnx_artifacts(path, tmp_path, precisions=["int8"], calibration_factory=lambda: iter(samples),
                                input_shapes=SHAPES)


def test_an_if_on_an_input_the_calibration_holds_constant_folds_and_its_ops_are_quantized(tmp_path):
    samples = stream(20)
    fp32, int8 = _build(tmp_path, samples)
    fusion = fp32["steps"]["fusion"]
    folds = [g for g in fusion["groups"] if g["pass"] == "fold_if"]
    assert [g["nodes"] for g in folds] == [["If_sr"]]
    assert folds[0]["result"] == "then_branch inlined (18 nodes): sr == 16000 in all 20 calibration samples"
    assert fusion["verified"]["max_relative_error"] <= 1e-4 and fusion["control_flow_ops"] == 0
    quantized = onnx.load(int8["path"]).graph
    assert "If" not in {n.op_type for n in quantized.node}
    dequantized = {n.output[0] for n in quantized.node if n.op_type == "DequantizeLinear"}
    matmuls = [n for n in quantized.node if n.op_type in ("MatMul", "Gemm")]
    assert len(matmuls) == 4 and all(n.input[0] in dequantized and n.input[1] in dequantized for n in matmuls)
    notes = control_flow_notes(fusion, int8=True)
    assert notes == ["onnx: If 'If_sr' folded, then_branch inlined (18 nodes): sr == 16000 in all 20 calibration "
                     "samples; the artifacts assume these values"]
    import onnxruntime as ort

    session = ort.InferenceSession(fp32["path"], providers=["CPUExecutionProvider"])
    reference = ort.InferenceSession(streaming_model().SerializeToString(), providers=["CPUExecutionProvider"])
    for feed in samples[:3]:
        for got, want in zip(session.run(None, feed), reference.run(None, feed)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_an_if_on_an_input_that_varies_stays_and_the_float_ops_are_reported(tmp_path):
    fp32, int8 = _build(tmp_path, stream(20, sr=[16000, 8000] * 10))
    fusion = fp32["steps"]["fusion"]
    assert not [g for g in fusion["groups"] if g["pass"] == "fold_if"]
    assert fusion["control_flow_ops"] == 2 * BRANCH_OPS
    assert control_flow_notes(fusion, int8=True) == [
        f"onnx: {2 * BRANCH_OPS} ops inside control flow (If/Loop/Scan bodies) stay float: onnxruntime "
        "quantizes no subgraph"]
    assert control_flow_notes(fusion, int8=False) == []


def test_an_if_on_a_constant_condition_folds_without_calibration_data():
    model = streaming_model()
    model.graph.node[1].input[0] = "rate16k"  # Equal(16000, 16000)
    fused, report = fuse(model)
    assert [g.result for g in report.groups if g.pass_name == "fold_if"] == [
        "then_branch inlined (18 nodes): its condition is constant"]
    assert report.ops_after.get("If", 0) == 0


def test_the_fold_is_checked_numerically_on_the_calibration_samples():
    model, _ = fix_input_shapes(streaming_model(), SHAPES)
    samples = stream(6)
    held = held_inputs(model, samples)
    assert set(held.values) == {"sr"} and held.samples == 6  # `state` is too large, `input` varies
    fused, _ = fuse(model, held=held)
    assert check_equivalent(model, fused, samples)["max_relative_error"] <= 1e-5
    with pytest.raises(ConversionError, match="changed the model's outputs"):
        check_equivalent(model, fused, stream(6, sr=8000))  # the else branch: the fold would be wrong there
    assert held_inputs(model, stream(4, sr=[16000, 8000, 16000, 16000])).values == {}


def test_an_if_with_a_constant_condition_inside_a_branch_folds_there():
    from onnx import TensorProto, helper, numpy_helper

    model = streaming_model()
    then = next(a.g for a in model.graph.node[2].attribute if a.name == "then_branch")
    tanh = next(n for n in then.node if n.op_type == "Tanh")
    tanh.output[0] = "then16k_h_raw"  # h = If(true, Identity(h_raw), Neg(h_raw))
    keep = helper.make_graph([helper.make_node("Identity", ["then16k_h_raw"], ["kept"])], "keep", [],
                             [helper.make_tensor_value_info("kept", TensorProto.FLOAT, None)])
    flip = helper.make_graph([helper.make_node("Neg", ["then16k_h_raw"], ["flipped"])], "flip", [],
                             [helper.make_tensor_value_info("flipped", TensorProto.FLOAT, None)])
    index = list(then.node).index(tanh) + 1
    then.node.insert(index, helper.make_node("If", ["always"], ["then16k_h"], name="If_inner",
                                             then_branch=keep, else_branch=flip))
    then.node.insert(0, helper.make_node("Constant", [], ["always"], value=numpy_helper.from_array(np.array(True))))
    onnx.checker.check_model(model)
    model, _ = fix_input_shapes(model, SHAPES)
    samples = stream(6, sr=[16000, 8000] * 3)
    fused, report = fuse(model, held=held_inputs(model, samples))
    assert [(g.nodes, g.result) for g in report.groups if g.pass_name == "fold_if"] == [
        (("If_inner",), "then_branch inlined (1 nodes): its condition is constant")]
    assert report.ops_after["If"] == 1 and check_equivalent(model, fused, samples)["max_relative_error"] == 0


def test_compress_says_plainly_how_many_ops_stay_float(tmp_path, edgekit_cli):
    import json

    onnx.save(streaming_model(), tmp_path / "vad.onnx")
    data = tmp_path / "data"
    data.mkdir()
    for i, sample in enumerate(stream(20, sr=[16000, 8000] * 10)):
        np.savez(data / f"chunk{i:02d}.npz", **sample)
    result = edgekit_cli("compress", tmp_path / "vad.onnx", "--int8", "-c", data, "-t", "onnx",
                         "--out", tmp_path / "out", "--json")
    assert result.code == 0, result.err
    message = f"onnx: {2 * BRANCH_OPS} ops inside control flow (If/Loop/Scan bodies) stay float"
    assert message in result.err and any(n.startswith(message) for n in json.loads(result.out)["notes"])
