"""`edgekit compress --max-accuracy-drop`: automatic float fallback on the INT8-hostile model."""

from __future__ import annotations

import json

from tests.conftest import DIGITS_DATA

# Cross-layer equalization (int8.equalize, default auto) fixes the planted pair on its own
# (tests/transforms/test_equalize.py), and activation smoothing (int8.smooth) improves the ONNX graph
# enough to meet the budget without a search: these tests exercise the fallback search, so both are off.
NO_EQUALIZATION = "int8:\n  equalize: \"off\"\n  smooth: \"off\"\n"


def _recipe(tmp_path):
    path = tmp_path / "no_equalization.yaml"
    path.write_text(NO_EQUALIZATION + "  channel_groups: false\n")  # the int16/float rungs (test_onnx_debug: groups)
    return path


def test_compress_meets_budget_with_planted_layers_in_float(hostile_keras, planted, tmp_path, edgekit_cli):
    out = tmp_path / "fb"
    result = edgekit_cli("compress", hostile_keras, "--int8", "-c", DIGITS_DATA, "--color", "grayscale",
                         "-t", "tflite", "-t", "onnx", "--max-accuracy-drop", "1.0", "--min-agreement", "0.9",
                         "--out", out, "--runs", "3", "--json", "--recipe", _recipe(tmp_path))
    assert result.code == 0, result.err
    report = json.loads(result.out)
    for artifact in (a for a in report["artifacts"] if a["precision"] == "int8"):
        fallback = artifact["details"]["fallback"]
        assert fallback["met"] is True
        # decided on the first 37 held-out samples, the choice confirmed on the other 38
        split = fallback["confirmation"]
        assert split["search_samples"] + split["samples"] == report["calibration"]["validation_samples"]
        assert fallback["final_confirmation"]["met"] and fallback["final_confirmation"]["samples"] == split["samples"]
        bound = fallback["confidence"]["top1_agreement"]  # its 95% lower bound, on the unseen samples
        assert bound["samples"] == split["samples"] and bound["limit"] == 0.9 and fallback["confidence"]["confirmed"]
        assert bound["lower_95"] < bound["value"] and ("met_within_noise" in artifact["flags"]) == (
            bound["lower_95"] < 0.9)
        ties = fallback["near_ties"]  # the float near ties among the digits, next to what 0.9 lets differ
        assert ties["metric"] == "top1_agreement" and ties["search"]["samples"] == split["search_samples"]
        assert ties["search"]["may_differ"] == int(0.1 * split["search_samples"] + 1e-9)
        assert ("near_ties_decide" in artifact["flags"]) == (ties["search"]["near_ties"] > ties["search"]["may_differ"])
        if artifact["target"] == "onnx":  # the precision ladder: the outlier tensor's readers leave W8A8
            layers = {row["layer"]: row for row in fallback["ladder"]["layers"]}
            down = [row for name, row in layers.items() if "outlier_down" in name]
            assert down and all(row["precision"] in ("W8A16", "float") for row in down), layers
            assert 0 < fallback["ladder"]["mac_share"].get("W8A8", 0) < 1, fallback["ladder"]["mac_share"]
            assert set(fallback["ladder"]["latency_p50_ms"]) == {"int8_plain", "final", "fp32"}
            assert artifact["accuracy"]["accuracy_drop_pts"] <= 1.0
            page = (out / "report.html").read_text()
            assert "precision per conv/matmul layer" in page and "Precision ladder" in page
            continue
        assert set(fallback["float_layers"]) == planted, (artifact["name"], fallback["float_layers"])
        baseline = fallback["steps"][0]
        assert baseline["phase"] == "baseline" and baseline["accuracy"]["accuracy_drop_pts"] > 3
        assert artifact["accuracy"]["accuracy_drop_pts"] <= 1.0  # re-validated after the fallback
        share = artifact["compression"]["mac_share"]  # re-inspected: the planted layers run in float
        assert 0 < share["int8"] < 1 and share["float32"] > 0, (artifact["name"], share)
        assert all({"bytes", "latency_p50_ms", "float_layers"} <= set(s) for s in fallback["steps"])


def test_smoothing_alone_fixes_the_planted_pair_in_the_onnx_graph(hostile_keras, tmp_path, edgekit_cli):
    """The x400 channel before ReLU + MaxPool, equalization off: activation smoothing (int8.smooth
    auto) moves it into the next conv's weights, and the plain ONNX INT8 build meets the budget."""
    recipe = tmp_path / "smooth_only.yaml"
    recipe.write_text("int8:\n  equalize: \"off\"\n")
    result = edgekit_cli("compress", hostile_keras, "--int8", "-c", DIGITS_DATA, "--color", "grayscale",
                         "-t", "onnx", "--max-accuracy-drop", "1.0", "--out", tmp_path / "out", "--runs", "2",
                         "--json", "--recipe", recipe)
    assert result.code == 0, result.err
    int8 = next(a for a in json.loads(result.out)["artifacts"] if a["precision"] == "int8")
    assert [s["phase"] for s in int8["details"]["fallback"]["steps"]] == ["baseline"]  # no search
    assert int8["accuracy"]["accuracy_drop_pts"] <= 1.0
    smoothed = int8["details"]["smoothing"]["tensors"]
    assert any("outlier_up" in t["tensor"] and t["gain"] > 100 for t in smoothed), smoothed
    # measured: 54.7 points lost without (the fallback test's baseline), 0.0 with; INT8 error 64553x less


def test_impossible_budget_exits_10_with_the_best_point(hostile_keras, tmp_path, edgekit_cli):
    out = tmp_path / "impossible"
    result = edgekit_cli("compress", hostile_keras, "--int8", "-c", DIGITS_DATA, "--color", "grayscale",
                         "--max-accuracy-drop", "1.0", "--max-float-layers", "1", "--out", out, "--runs", "2",
                         "--quiet", "--recipe", _recipe(tmp_path))
    assert result.code == 10
    assert "max_accuracy_drop" in result.err
    report = json.loads((out / "report.json").read_text())
    int8 = [a for a in report["artifacts"] if a["precision"] == "int8"][0]
    assert int8["details"]["fallback"]["met"] is False
    assert len(int8["details"]["fallback"]["steps"]) >= 2
