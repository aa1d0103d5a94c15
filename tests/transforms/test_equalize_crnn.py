"""A TF text recognizer with an INT8-sensitive part (issue #13): the CTC recognizer of
tests/validate with one channel of its last conv x400 before MaxPool -> Permute -> Reshape, and
the per-column dense layer's rows of that channel /400 (float unchanged). Plain INT8 reads almost
no line right and the float fallback finds no fix; equalization meets a 97% sequence budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.validate.test_sequence_compress import ALPHABET, render, train_recognizer

pytestmark = pytest.mark.slow  # trains a recognizer (~20 s) and compresses it twice


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    import keras

    root = tmp_path_factory.mktemp("crnn")
    model = keras.saving.load_model(train_recognizer(root / "ctc.keras"))
    rng = np.random.default_rng(7)
    lines = root / "lines"
    lines.mkdir()
    for i in range(120):
        render("".join(rng.choice(list(ALPHABET), rng.integers(3, 7)))).save(lines / f"line{i:03d}.png")
    conv, dense = model.get_layer("conv2d_1"), model.get_layer("dense")
    kernel, bias = conv.get_weights()
    channels = kernel.shape[-1]
    probe = np.stack([np.asarray(render("40721"), np.float32)[..., None] / 255])
    channel = int(np.argmax(keras.Model(model.inputs, conv.output).predict(probe, verbose=0).max(axis=(0, 1, 2))))
    kernel[..., channel] *= 400
    bias[channel] *= 400
    conv.set_weights([kernel, bias])
    dense_kernel, dense_bias = dense.get_weights()
    dense_kernel[channel::channels] /= 400  # Reshape keeps the channel fastest: rows c, c + C, ...
    dense.set_weights([dense_kernel, dense_bias])
    model.save(root / "planted.keras")
    return root / "planted.keras", lines


def _compress(edgekit_cli, model, data, out, *extra):
    result = edgekit_cli("compress", model, "--int8", "--calibration", data, "--color", "grayscale", "--out", out,
                         "--runs", "3", "--warmup", "1", "--min-sequence-match", "0.97", "--quiet", *extra)
    report = json.loads((out / "report.json").read_text())
    return result.code, next(a for a in report["artifacts"] if a["precision"] == "int8")


def test_equalization_brings_the_planted_recognizer_to_the_sequence_budget(planted, tmp_path, edgekit_cli):
    model, data = planted
    code, int8 = _compress(edgekit_cli, model, data, tmp_path / "eq")
    assert code == 0
    assert int8["accuracy"]["sequence_match"] >= 0.97
    assert int8["compression"]["mac_share"].get("int8", 0) >= 0.9
    pairs = int8["details"]["equalization"]["pairs"]
    assert any(p["pair"] == "conv2d_1 -> dense" and p["scale_max"] > 100 for p in pairs)


def test_without_equalization_the_planted_recognizer_misses_it(planted, tmp_path, edgekit_cli):
    model, data = planted
    recipe = tmp_path / "off.yaml"
    recipe.write_text("int8:\n  equalize: \"off\"\n")
    code, int8 = _compress(edgekit_cli, model, data, tmp_path / "off", "--recipe", recipe, "--no-fallback")
    assert code == 10 and int8["accuracy"]["sequence_match"] < 0.5
