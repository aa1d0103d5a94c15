"""`edgekit debug` and compress's float fallback search the same graph through the same Target,
so the nodes debug names are the ones compress keeps in float (#12)."""

from __future__ import annotations

import json

import onnx
import pytest

from tests.conftest import DIGITS_DATA
from tests.onnx.models import conv_bn_model

# An impossible budget makes both searches take the same steps up to the same layer limit.
BUDGET = ("--min-sqnr", "300", "--max-float-layers", "2")


def _both(edgekit_cli, model, tmp_path, target, *extra):
    debug_out, compress_out = tmp_path / "debug", tmp_path / "compress"
    common = ("--int8", "-c", DIGITS_DATA, "--color", "grayscale", "-t", target, "--quiet", *BUDGET, *extra)
    debugged = edgekit_cli("debug", model, "-o", debug_out, *common)
    compressed = edgekit_cli("compress", model, "-o", compress_out, "--runs", "2", "--warmup", "1",
                             "--allow-low-float-accuracy", *common)  # the untrained graph scores at chance
    assert debugged.code == 10 and compressed.code == 10, (debugged.err, compressed.err)  # budget missed, reports written
    debug_doc = json.loads((debug_out / "debug.json").read_text())
    report = json.loads((compress_out / "report.json").read_text())
    int8 = next(a for a in report["artifacts"] if a["target"] == target and a["precision"] == "int8")
    fp32 = next(a for a in report["artifacts"] if a["target"] == target and a["precision"] == "fp32")
    return debug_doc, int8, compress_out / fp32["name"]


def test_opset11_onnx_debug_and_compress_name_the_same_fused_nodes(edgekit_cli, tmp_path):
    model = tmp_path / "conv_bn_opset11.onnx"
    onnx.save(conv_bn_model(opset=11, dynamic=True), str(model))
    debug_doc, int8, fp32 = _both(edgekit_cli, model, tmp_path, "onnx", "--layout", "nchw")
    fused = onnx.load(str(fp32))
    assert fused.opset_import[0].version >= 13  # the upgrade per-channel QDQ needs ran for debug too
    names = {n.name for n in fused.graph.node}
    ranked = [r["node"] for r in debug_doc["ranking"]]
    assert ranked and set(ranked) <= names
    # the raw graph's MatMul+Add pair and BatchNorms do not exist after fusion: debug must not name them
    assert not {"fc_add", "bn1", "bn2"} & set(ranked)

    # the precision ladder: the same candidates, in the same order, with the same units raised
    def steps(fallback):
        return [(s["phase"], s["precisions"], s["float_nodes"]) for s in fallback["steps"]]

    assert steps(int8["details"]["fallback"]) == steps(debug_doc["fallback"])
    assert any(precisions for _, precisions, _ in steps(debug_doc["fallback"]))


@pytest.mark.slow
def test_savedmodel_debug_and_compress_name_the_same_layers(edgekit_cli, digits_models, tmp_path):
    _, savedmodel = digits_models
    debug_doc, int8, _ = _both(edgekit_cli, savedmodel, tmp_path, "tflite")
    floated = int8["details"]["fallback"]["float_layers"]
    assert floated and floated == debug_doc["fallback"]["float_layers"]
