"""edgekit debug on TFLite, end to end on the INT8-hostile model trained on real digits."""

from __future__ import annotations

import json

import pytest

from tests.conftest import DIGITS_DATA
from tests.debug.test_compress_fallback import NO_EQUALIZATION

COMMON = ["--int8", "--calibration", DIGITS_DATA, "--color", "grayscale", "--quiet"]


@pytest.fixture(scope="module")
def no_equalization(tmp_path_factory):
    """Equalization alone fixes the planted pair (as in compress): these tests exercise the search."""
    path = tmp_path_factory.mktemp("recipe") / "no_equalization.yaml"
    path.write_text(NO_EQUALIZATION)
    return path


@pytest.fixture(scope="module")
def fallback_run(hostile_keras, tmp_path_factory, edgekit_cli_module, no_equalization):
    out = tmp_path_factory.mktemp("dbg") / "out"
    result = edgekit_cli_module("debug", hostile_keras, *COMMON, "--out", out, "--max-accuracy-drop", "1.0",
                                "--recipe", no_equalization)
    return result, out, json.loads((out / "debug.json").read_text())


def test_debug_equalizes_the_keras_model_as_compress_does(hostile_keras, tmp_path, edgekit_cli_module):
    """int8.equalize defaults to auto in debug too: the planted x400 pair is rescaled before export,
    so plain INT8 is already within budget and the ranking starts from the graph compress builds."""
    out = tmp_path / "out"
    result = edgekit_cli_module("debug", hostile_keras, *COMMON, "--out", out, "--max-accuracy-drop", "1.0")
    assert result.code == 0, result.err
    doc = json.loads((out / "debug.json").read_text())
    pairs = doc["equalization"]["keras_pairs"]
    assert doc["equalization"]["mode"] == "auto" and any("outlier_up" in p["pair"] for p in pairs), pairs
    assert doc["int8"]["accuracy_drop_pts"] <= 1.0


def test_plain_int8_is_hostile_and_planted_layers_rank_first(fallback_run, planted):
    result, out, doc = fallback_run
    assert result.code == 0, result.err
    assert doc["int8"]["accuracy_drop_pts"] > 3.0  # plain INT8 clearly misses the budget
    assert doc["int8"]["reference_accuracy"] > 0.85  # the float model learned the digits
    assert {r["layer"] for r in doc["ranking"][:2]} == planted
    assert set(doc["culprits"]) == planted


def test_per_tensor_metrics_and_scale_outlier_flag(fallback_run):
    _, _, doc = fallback_run
    by_layer = {layer["layer"]: layer for layer in doc["layers"]}
    up = by_layer["outlier_up"]
    # the culprit's own RMSE/scale looks harmless (its scale is inflated) ...
    assert up["rmse_over_scale"] < max(layer["rmse_over_scale"] for layer in doc["layers"])
    # ... but the channel range ratio flags it, and the consumer's error is the largest
    assert up["scale_outlier"] and up["channel_range_ratio"] > 100
    assert any(flag.startswith("scale outlier") for flag in up["flags"])
    assert by_layer["outlier_down"]["rmse_over_scale"] > 1.0
    positions = [layer["position"] for layer in doc["layers"]]
    assert positions == sorted(positions)  # graph order
    for layer in doc["layers"]:
        assert 0 <= layer["rmse"] and -1 <= layer["cosine"] <= 1 and layer["samples"] == doc["samples"]


def test_fallback_meets_budget_with_the_planted_layers(fallback_run, planted):
    _, out, doc = fallback_run
    fb = doc["fallback"]
    assert fb["met"] and set(fb["float_layers"]) == planted
    assert fb["final"]["accuracy"]["accuracy_drop_pts"] <= 1.0
    assert fb["steps"][0]["phase"] == "baseline" and not fb["steps"][0]["met"]
    for step in fb["steps"]:
        assert step["bytes"] > 0 and step["latency_p50_ms"] > 0
    model = (out / "model_int8_fallback.tflite").read_bytes()
    assert len(model) == fb["final"]["bytes"]
    from edgekit.backends.tflite.inspect import read_ops

    convs = [op for op in read_ops(model) if op.type == "CONV_2D"]
    float_convs = [op for op in convs if op.input_dtypes[0] == "float32"]
    assert len(float_convs) == 2 and len(convs) - 2 >= 2  # two float, the rest still int8
    assert {"debug.md", "debug.html"} <= {p.name for p in out.iterdir()}
    md = (out / "debug.md").read_text()
    assert "outlier_up" in md and "Float fallback" in md
    assert "data:image/png;base64," in (out / "debug.html").read_text()


def test_impossible_budget_exits_10_with_best_point(hostile_keras, tmp_path, edgekit_cli_module, no_equalization):
    out = tmp_path / "out"
    result = edgekit_cli_module("debug", hostile_keras, *COMMON, "--out", out, "--min-sqnr", "200",
                                "--max-float-layers", "2", "--recipe", no_equalization)
    assert result.code == 10, result.err
    assert "best point" in result.err and "float layer(s)" in result.err
    doc = json.loads((out / "debug.json").read_text())
    assert doc["fallback"]["met"] is False and len(doc["fallback"]["steps"]) >= 2


def test_selective_build_matches_the_pipeline_int8_and_keeps_named_nodes_float(hostile_keras, tmp_path):
    """No float nodes = the same INT8 model as build_tflite; a named node = exactly that op float."""
    import numpy as np

    from edgekit.calibration.sources import CalibrationSource
    from edgekit.sources.tensorflow import keras_layer_names
    from edgekit.backends.tflite.selective import TfliteSelective
    from edgekit.model.checks import check_model_path
    from edgekit.recipe.schema import Preprocess
    from edgekit.runtime.tflite import TfliteRunner
    from edgekit.sources.tensorflow import export_fixed_savedmodel
    from edgekit.backends.tflite.build import build_tflite
    from edgekit.backends.tflite.inspect import read_ops

    exported = export_fixed_savedmodel(check_model_path(hostile_keras), tmp_path, {})
    source = CalibrationSource(DIGITS_DATA, exported.inputs, Preprocess(color="grayscale"))
    refs = source.refs[:100]
    factory = lambda: source.stream(refs)  # noqa: E731
    selective = TfliteSelective(exported.saved_dir, factory, layer_names=keras_layer_names(hostile_keras))
    try:
        plain = build_tflite(exported.saved_dir, "int8", factory)
        ours = selective.build()
        (tmp_path / "a.tflite").write_bytes(plain)
        (tmp_path / "b.tflite").write_bytes(ours)
        feeds = list(source.stream(source.refs[-20:]))
        a, b = TfliteRunner(tmp_path / "a.tflite"), TfliteRunner(tmp_path / "b.tflite")
        for feed in feeds:
            for name, value in a.run(feed).items():
                np.testing.assert_array_equal(value, b.run(feed)[name])
        up = next(n for n in selective.nodes() if n.layer == "outlier_up")
        ops = read_ops(selective.build([up.id]))
        assert [op.input_dtypes[0] for op in ops if up.id in op.output_names] == ["float32"]
        assert sum(op.input_dtypes[:1] == ("float32",) for op in ops if op.type == "CONV_2D") == 1
    finally:
        selective.close()
