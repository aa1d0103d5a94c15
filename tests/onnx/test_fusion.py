"""Each fusion pass, checked numerically: fused vs unfused outputs on the same inputs (1e-4)."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.backends.onnx.fusion.runner import PASSES, fuse
from edgekit.backends.onnx.fusion.verify import max_relative_error
from edgekit.backends.onnx.shapes import fix_input_shapes
from tests.onnx.models import conv_bn_model

FEEDS = [{"input": np.random.default_rng(i).normal(size=(1, 1, 8, 8)).astype(np.float32)} for i in range(4)]


@pytest.fixture(scope="module")
def static_model():
    return fix_input_shapes(conv_bn_model())[0]


EXPECTED = {
    "eliminate_identity": (2, {"Identity", "Dropout"}),
    "fold_batchnorm": (4, {"BatchNormalization"}),
    "fuse_matmul_add": (1, {"MatMul", "Add"}),
    "cancel_reshape_transpose": (1, {"Transpose"}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pass_alone_is_exact(static_model, name):
    fused, report = fuse(static_model, [name])
    groups, gone = EXPECTED[name]
    assert report.counts_by_pass() == {name: groups}
    assert not gone & set(report.ops_after)
    assert max_relative_error(static_model, fused, FEEDS) < 1e-4


def test_constant_folding_of_shape_subgraph():
    dynamic = conv_bn_model(dynamic=True)
    fixed, record = fix_input_shapes(dynamic)
    assert record["fixed_inputs"] == {"input": [1, 1, 8, 8]}
    assert record["folded"][0]["nodes"] == ["shape", "gather", "concat"]
    assert not {"Shape", "Gather", "Concat"} & {n.op_type for n in fixed.graph.node}
    assert max_relative_error(dynamic, fixed, FEEDS) < 1e-4


def test_all_passes_report_and_stay_exact(static_model):
    fused, report = fuse(static_model)
    data = report.to_dict()
    assert data["nodes_before"] == 18 and data["nodes_after"] == 9
    assert set(data["fusions"]) == set(EXPECTED)
    bn = [g for g in data["groups"] if g["pass"] == "fold_batchnorm"]
    assert {tuple(g["nodes"]) for g in bn} == {
        ("conv1", "bn1_bn"), ("conv2", "bn2_bn"), ("deconv", "bn3_bn"), ("head", "bn4_bn")}
    assert max_relative_error(static_model, fused, FEEDS) < 1e-4


def test_dynamic_batch_model_fuses_without_fixing():
    model = conv_bn_model(dynamic=True)
    fused, report = fuse(model)
    assert "BatchNormalization" not in report.ops_after
    feeds = [{"input": np.random.default_rng(9).normal(size=(3, 1, 8, 8)).astype(np.float32)}]
    assert max_relative_error(model, fused, feeds) < 1e-4


def test_unknown_pass_name():
    with pytest.raises(ValueError, match="unknown fusion passes"):
        fuse(conv_bn_model(), ["nope"])
    assert "fold_constants" in PASSES


def test_check_equivalent_refuses_a_wrong_rewrite(static_model):
    """A 1% weight change is caught: the tolerance widens only to onnxruntime's own rounding noise."""
    from onnx import numpy_helper

    from edgekit.errors import ConversionError
    from edgekit.backends.onnx.fusion.verify import check_equivalent

    fused, _ = fuse(static_model)
    assert check_equivalent(static_model, fused, FEEDS)["tolerance"] == 1e-4
    wrong = type(fused)()
    wrong.CopyFrom(fused)
    weight = next(i for i in wrong.graph.initializer if len(i.dims) == 4)
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.01, weight.name))
    with pytest.raises(ConversionError, match="changed the model's outputs"):
        check_equivalent(static_model, wrong, FEEDS)
