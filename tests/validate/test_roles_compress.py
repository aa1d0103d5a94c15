"""End to end: `compress --int8` on small Keras models whose headline output is not the first by
name, a channels-first detector head that INT8 collapses, and a streaming model with state."""

from __future__ import annotations

import json

import numpy as np
import pytest

SAMPLES = 48


def _save(model, folder, name):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.keras"
    model.save(path)
    return path


def _data(folder, **arrays):
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "batch.npz", **arrays)
    return folder


@pytest.fixture(scope="module")
def two_head(tmp_path_factory):
    """Input [16] -> 'a_box' (4 linear coordinates, first by name) and 'probs' (5-class softmax)."""
    import keras

    keras.utils.set_random_seed(3)
    x = keras.Input((16,), name="x")
    h = keras.layers.Dense(32, activation="relu", name="hidden")(x)
    box = keras.layers.Dense(4, name="a_box")(h)
    probs = keras.layers.Dense(5, activation="softmax", name="probs")(h)
    root = tmp_path_factory.mktemp("two_head")
    data = _data(root / "data", x=np.random.default_rng(0).normal(0, 1, (SAMPLES, 16)).astype(np.float32))
    return _save(keras.Model(x, [box, probs]), root, "two_head"), data


@pytest.fixture(scope="module")
def yolo_head(tmp_path_factory):
    """Image 16x16x3 -> 'det' [1, 4 + 3, 40]: pixel boxes (0..330) then class scores (~0.3-0.5) in
    one Concat, channels first: a single uint8 scale makes every class score 0 or 1.29."""
    import keras

    keras.utils.set_random_seed(4)
    anchors, classes = 40, 3
    image = keras.Input((16, 16, 3), name="image")
    h = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv")(image)
    h = keras.layers.Flatten(name="flat")(h)
    boxes = keras.layers.Dense(4 * anchors, activation="sigmoid", name="box_dense")(h)
    boxes = keras.layers.Rescaling(330.0, name="to_pixels")(boxes)
    boxes = keras.layers.Reshape((4, anchors), name="box_rows")(boxes)
    small = keras.initializers.RandomNormal(0.0, 0.03)
    scores = keras.layers.Dense(classes * anchors, activation="sigmoid", kernel_initializer=small,
                                bias_initializer=keras.initializers.Constant(-0.6), name="cls_dense")(h)
    scores = keras.layers.Reshape((classes, anchors), name="cls_rows")(scores)
    det = keras.layers.Concatenate(axis=1, name="det")([boxes, scores])
    root = tmp_path_factory.mktemp("yolo")
    data = _data(root / "data", image=np.random.default_rng(1).random((SAMPLES, 16, 16, 3), dtype=np.float32))
    return _save(keras.Model(image, det), root, "yolo"), data


@pytest.fixture(scope="module")
def streaming(tmp_path_factory):
    """Inputs x [16] and h0 [8] -> 'hn' [8] (the next state, first by name) and 'speech' [1]."""
    import keras

    keras.utils.set_random_seed(5)
    x, h0 = keras.Input((16,), name="x"), keras.Input((8,), name="h0")
    joined = keras.layers.Concatenate(name="join")([x, h0])
    hn = keras.layers.Dense(8, activation="tanh", name="hn")(joined)
    speech = keras.layers.Dense(1, activation="sigmoid", name="speech")(hn)
    root = tmp_path_factory.mktemp("streaming")
    rng = np.random.default_rng(2)
    data = _data(root / "data", x=rng.normal(0, 1, (SAMPLES, 16)).astype(np.float32),
                 h0=rng.uniform(-1, 1, (SAMPLES, 8)).astype(np.float32))
    return _save(keras.Model([x, h0], [hn, speech]), root, "streaming"), data


def _compress(edgekit_cli, model, data, out, *extra):
    result = edgekit_cli("compress", model, "--int8", "--calibration", data, "--out", out, "--runs", "3",
                         "--warmup", "1", "--quiet", *extra)
    return result, json.loads((out / "report.json").read_text())


def _int8(report):
    return next(a for a in report["artifacts"] if a["precision"] == "int8")


def test_headline_is_the_class_head_not_the_first_output_by_name(two_head, tmp_path, edgekit_cli):
    result, report = _compress(edgekit_cli, *two_head, tmp_path / "a", "--min-agreement", "0.5")
    assert result.code == 0, result.err
    acc = _int8(report)["accuracy"]
    assert acc["primary_output"] == "probs" and acc["primary_role"] == "scores"
    assert acc["outputs"]["a_box"]["role"] == "regression" and acc["outputs"]["a_box"]["top1_agreement"] is None
    assert acc["top1_agreement"] == acc["outputs"]["probs"]["top1_agreement"] >= 0.5
    assert acc["sqnr_db"] == acc["outputs"]["probs"]["sqnr_db"]
    gates = {g["gate"]: g for g in _int8(report)["gates"]}
    assert gates["min_agreement"]["value"] == acc["top1_agreement"] and gates["collapse_guard"]["passed"]
    fp32 = next(a for a in report["artifacts"] if a["precision"] == "fp32")
    assert _int8(report)["compression"]["mac_share"] == {"int8": 1.0} and _int8(report)["flags"] in ([], [
        "int8_slower_than_fp32"])
    assert fp32["compression"]["mac_share"] == {"float32": 1.0} and fp32["compression"]["macs"] == 16 * 32 + 32 * 9
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("outputs:\n  a_box: {primary: true}\n")
    result, report = _compress(edgekit_cli, *two_head, tmp_path / "b", "--recipe", recipe)
    assert result.code == 0, result.err
    acc = _int8(report)["accuracy"]
    assert acc["primary_output"] == "a_box" and acc["top1_agreement"] is None


def test_collapsed_detector_head_fails_the_default_guard(yolo_head, tmp_path, edgekit_cli):
    out = tmp_path / "y"
    result, report = _compress(edgekit_cli, *yolo_head, out)
    assert result.code == 10
    assert "collapse_guard" in result.err and "output `det` rows 4-6 (class scores) SQNR" in result.err
    entry = _int8(report)
    det = entry["accuracy"]["outputs"]["det"]
    assert det["role"] == "boxes" and det["worst_group"] == "rows 4-6 (class scores)"
    assert det["boxes"]["reference_detections"] > 0 and det["boxes"]["recall"] < 0.5
    assert entry["accuracy"]["sqnr_db"] > det["worst_group_sqnr_db"]  # the total hides the class rows
    assert not report["gates_passed"]
    page = (out / "report.md").read_text()
    assert "Primary output: `det` (boxes)" in page and "| `model_int8.tflite` | `det` (primary) | boxes |" in page
    assert "rows 4-6 (class scores)" in page and "## What runs quantized" in page
    assert 'alt="detections on the first validation image, float vs each build"' in (out / "report.html").read_text()
    fp32 = next(a for a in report["artifacts"] if a["precision"] == "fp32")
    assert fp32["accuracy"]["box_f1"] == 1.0


def test_streaming_state_is_reported_but_not_the_headline(streaming, tmp_path, edgekit_cli):
    result, report = _compress(edgekit_cli, *streaming, tmp_path / "s")
    assert result.code == 0, result.err
    acc = _int8(report)["accuracy"]
    assert acc["primary_output"] == "speech"
    assert acc["outputs"]["hn"]["role"] == "state" and acc["outputs"]["hn"]["sqnr_db"] is not None
    assert acc["sqnr_db"] == acc["outputs"]["speech"]["sqnr_db"]
