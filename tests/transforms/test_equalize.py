"""Cross-layer equalization: the numpy algorithm on real arrays, and the planted-outlier digits
CNN of issue #13 through the real TFLite converter and onnxruntime's quantizer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.transforms.equalize import Pair, channel_ranges, equalize
from scripts.models import hostile, outlier
from tests.conftest import DIGITS_DATA


def _two_layers(rng, outlier: float):
    """dense(16) -> ReLU -> dense(4) with channel 5 scaled x outlier / its consumer row / outlier."""
    w1, b1, w2 = rng.normal(size=(8, 16)), rng.normal(size=16), rng.normal(size=(16, 4))
    w1[:, 5] *= outlier
    b1[5] *= outlier
    w2[5] /= outlier
    return {"w1": w1.astype(np.float32), "b1": b1.astype(np.float32), "w2": w2.astype(np.float32)}


def _forward(weights, x):
    return np.maximum(x @ weights["w1"] + weights["b1"], 0) @ weights["w2"]


def test_equalization_keeps_the_function_and_removes_the_outlier_channel():
    rng = np.random.default_rng(0)
    weights = _two_layers(rng, 400.0)
    pair = Pair("w1", 1, "b1", (("w2", 0),))
    x = rng.normal(size=(64, 8)).astype(np.float32)
    new, records = equalize(weights, [pair], "auto")
    np.testing.assert_allclose(_forward(new, x), _forward(weights, x), rtol=1e-4, atol=1e-4)
    hidden_before = np.maximum(x @ weights["w1"] + weights["b1"], 0)
    hidden_after = np.maximum(x @ new["w1"] + new["b1"], 0)
    share = lambda h: np.abs(h).max(axis=0)  # noqa: E731
    assert share(hidden_before).max() / np.median(share(hidden_before)) > 100  # one channel sets the range
    assert share(hidden_after).max() / np.median(share(hidden_after)) < 10
    assert len(records) == 1 and records[0]["spread_before"] > 100 and records[0]["spread_after"] < 1.1
    assert records[0]["scale_max"] > 100  # the outlier channel's weights were divided by > 100
    r1, r2 = channel_ranges(new["w1"], 1), channel_ranges(new["w2"], 0)
    np.testing.assert_allclose(r1, r2, rtol=1e-5)  # both sides of every channel have the same range
    assert weights["w1"][0, 5] != new["w1"][0, 5]  # a copy was changed, not the input


def test_auto_leaves_an_ordinary_pair_alone_and_off_changes_nothing():
    rng = np.random.default_rng(1)
    weights = _two_layers(rng, 1.0)
    pair = Pair("w1", 1, "b1", (("w2", 0),))
    for mode in ("auto", "off"):
        new, records = equalize(weights, [pair], mode)
        assert records == [] and all(new[k] is weights[k] for k in weights)
    new, records = equalize(weights, [pair], "on")
    assert len(records) == 1 and records[0]["spread_before"] < 8 and records[0]["spread_after"] < 1.1
    with pytest.raises(ValueError, match="equalization mode"):
        equalize(weights, [pair], "sometimes")


@pytest.fixture(scope="module")
def outlier_keras(tmp_path_factory):
    """The planted-outlier digits CNN (channel x400 before ReLU + MaxPool, depthwise /400)."""
    return outlier.save_outlier(tmp_path_factory.mktemp("outlier"))


def _compress(model, out, target, *extra):
    from edgekit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["compress", str(model), "--int8", "--calibration", str(DIGITS_DATA), "-t", target,
              "--out", str(out), "--runs", "5", "--quiet", *extra])
    report = json.loads((out / "report.json").read_text())
    return exit_info.value.code, {a["precision"]: a for a in report["artifacts"] if a["target"] == target}


@pytest.mark.parametrize("target", ["tflite", "onnx"])
def test_equalization_recovers_the_planted_outlier_model(outlier_keras, tmp_path, target):
    code, artifacts = _compress(outlier_keras, tmp_path / "eq", target)
    int8 = artifacts["int8"]
    assert code == 0
    assert artifacts["fp32"]["accuracy"]["reference_accuracy"] >= 0.9
    assert int8["accuracy"]["accuracy_drop_pts"] <= 1.0
    assert int8["compression"]["mac_share"].get("int8", 0) >= 0.9
    equalized = int8["details"]["equalization"]
    assert equalized["mode"] == "auto"
    first = equalized["pairs"][0]
    assert "conv1" in first["pair"] and first["spread_before"] > 100 and first["scale_max"] > 100


@pytest.mark.slow
def test_without_equalization_the_outlier_model_collapses(outlier_keras, tmp_path):
    recipe = tmp_path / "off.yaml"
    recipe.write_text("int8:\n  equalize: \"off\"\n")
    code, artifacts = _compress(outlier_keras, tmp_path / "off", "onnx", "--recipe", recipe)
    assert artifacts["int8"]["accuracy"]["accuracy_drop_pts"] > 20  # what equalization fixes above
    assert "equalization" not in artifacts["int8"]["details"]


def test_a_flattened_consumer_is_scaled_at_every_position_of_a_channel():
    """[N, k, C] flattened channel-fastest to [N, k * C] (a CRNN's columns before its dense layer)."""
    rng = np.random.default_rng(2)
    w1, b1, w2 = rng.normal(size=(8, 4)), rng.normal(size=4), rng.normal(size=(3 * 4, 5))
    w1[:, 1] *= 300
    b1[1] *= 300
    w2[1::4] /= 300
    weights = {k: v.astype(np.float32) for k, v in {"w1": w1, "b1": b1, "w2": w2}.items()}
    x = rng.normal(size=(3, 16, 8)).astype(np.float32)  # k = 3 positions of 8 features

    def forward(w):
        hidden = np.maximum(x @ w["w1"] + w["b1"], 0)  # [16, 3, 4] after the transpose below
        return hidden.transpose(1, 0, 2).reshape(16, 12) @ w["w2"]

    new, records = equalize(weights, [Pair("w1", 1, "b1", (("w2", 0),))], "auto")
    np.testing.assert_allclose(forward(new), forward(weights), rtol=1e-4, atol=1e-3)
    assert records and records[0]["spread_before"] > 100 and records[0]["spread_after"] < 1.1


@pytest.mark.slow
def test_the_fallback_tests_hostile_model_needs_no_float_layer_when_equalized(tmp_path):
    """scripts/models/hostile.py's planted outlier_up -> outlier_down pair (1x1 convs, nothing between)."""
    model = hostile.save_hostile(tmp_path / "hostile")
    code, artifacts = _compress(model, tmp_path / "out", "onnx", "--max-accuracy-drop", "1.0", "--color", "grayscale")
    int8 = artifacts["int8"]
    assert code == 0 and int8["accuracy"]["accuracy_drop_pts"] <= 1.0
    assert "fallback" not in int8["details"] or not int8["details"]["fallback"]["float_layers"]
    assert any("outlier_up" in p["pair"] for p in int8["details"]["equalization"]["pairs"])
