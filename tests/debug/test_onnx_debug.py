"""edgekit debug --target onnx on the hostile model exported with tf2onnx (onnxruntime QDQ)."""

from __future__ import annotations

import json

from tests.conftest import DIGITS_DATA
from tests.debug.test_compress_fallback import NO_EQUALIZATION


def test_onnx_report_and_fallback(hostile_keras, planted, tmp_path, edgekit_cli_module):
    out = tmp_path / "out"
    recipe = tmp_path / "no_equalization.yaml"  # equalization alone fixes the planted pair: this tests the search
    recipe.write_text(NO_EQUALIZATION)
    result = edgekit_cli_module("debug", hostile_keras, "--int8", "--calibration", DIGITS_DATA, "--color",
                                "grayscale", "--quiet", "--target", "onnx", "--out", out, "--max-accuracy-drop", "1",
                                "--recipe", recipe)
    assert result.code == 0, result.err
    doc = json.loads((out / "debug.json").read_text())
    assert doc["target"] == "onnx" and doc["int8"]["accuracy_drop_pts"] > 3.0
    assert {r["layer"] for r in doc["ranking"][:2]} == planted and set(doc["culprits"]) == planted
    # ONNX runs the precision ladder: the x400 outlier tensor's reader keeps W8A8 through channel-group
    # scales (equalization and smoothing off), every MAC W8A8 within 1 pt (issue #13, step 2; with
    # int8.channel_groups false it leaves W8A8: tests/debug/test_compress_fallback.py)
    fb = doc["fallback"]
    assert fb["met"] and fb["final"]["accuracy"]["accuracy_drop_pts"] <= 1.0
    rows = {row["layer"]: row for row in doc["ladder"]["layers"]}
    down = [name for name in rows if "outlier_down" in name]
    assert len(down) > 1 and all("/channel_group_" in name and rows[name]["precision"] == "W8A8" for name in down), rows
    assert doc["ladder"]["mac_share"] == {"W8A8": 1.0}
    page = next(out.glob("*.md")).read_text()
    assert "| channel groups |" in page and "- channel-group activation scales (W8A8): `" in page
    assert any("outlier_down" in node for node in doc["ladder"]["regrouped_weights"]), doc["ladder"]["regrouped_weights"]
    assert "- channel-group INT8 weight scales (one per output channel and group): `" in page
    import onnx

    model = onnx.load(str(out / "model_int8_fallback.onnx"))
    assert [n for n in model.graph.node if n.op_type == "Gather" and "/channel_group_" in n.name], \
        "the saved model carries the ladder's channel groups"


def test_debug_smooths_the_graph_as_compress_does(hostile_keras, tmp_path, edgekit_cli_module):
    """int8.smooth defaults to auto in debug too: debug.json names the tensors smoothed, and the
    planted pair no longer costs accuracy (equalization off, so smoothing alone did it)."""
    recipe = tmp_path / "smooth_only.yaml"
    recipe.write_text("int8:\n  equalize: \"off\"\n")
    out = tmp_path / "out"
    result = edgekit_cli_module("debug", hostile_keras, "--int8", "--calibration", DIGITS_DATA, "--color",
                                "grayscale", "--quiet", "--target", "onnx", "--out", out, "--recipe", recipe)
    assert result.code == 0, result.err
    doc = json.loads((out / "debug.json").read_text())
    assert doc["smoothing"]["mode"] == "auto" and doc["int8"]["accuracy_drop_pts"] <= 1.0
    assert any("outlier_up" in t["tensor"] for t in doc["smoothing"]["tensors"]), doc["smoothing"]
