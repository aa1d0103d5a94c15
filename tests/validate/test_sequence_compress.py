"""End to end: a CTC text recognizer trained here on rendered digit strings; its report carries the
decoded-sequence exact match and a `min_sequence_match` gate reads it."""

from __future__ import annotations

import json

import numpy as np
import pytest

ALPHABET = "0123456789"
BLANK = len(ALPHABET)  # Keras convention: the blank is the last class
HEIGHT, WIDTH = 24, 96


def render(text: str):
    """A 96x24 white grayscale image with `text` in black (Pillow's bundled font)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (WIDTH, HEIGHT), 255)
    ImageDraw.Draw(image).text((4, HEIGHT // 2), text, fill=0, font=ImageFont.load_default(size=18), anchor="lm")
    return image


def train_recognizer(path, steps: int = 400, seed: int = 0):
    """Conv -> pool -> conv -> pool -> per-column Dense -> softmax [1, 24, 11], CTC-trained for
    `steps` batches of 32 random 3-6 digit strings (reads them all after ~400, ~20 s); returns the .keras path."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    texts = ["".join(rng.choice(list(ALPHABET), rng.integers(3, 7))) for _ in range(512)]
    images = np.stack([np.asarray(render(t), np.float32)[..., None] / 255 for t in texts])
    labels = np.full((len(texts), 6), BLANK, np.int32)
    for i, t in enumerate(texts):
        labels[i, :len(t)] = [ALPHABET.index(c) for c in t]
    lengths = np.array([len(t) for t in texts], np.int32)
    image = keras.Input((HEIGHT, WIDTH, 1), name="image")
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(image)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling2D(2)(h)  # [6, 24, 32]
    h = keras.layers.Permute((2, 1, 3))(h)
    h = keras.layers.Reshape((WIDTH // 4, (HEIGHT // 4) * 32))(h)
    h = keras.layers.Dense(64, activation="relu")(h)
    logits = keras.layers.Dense(len(ALPHABET) + 1, name="logits")(h)
    probs = keras.layers.Softmax(name="ctc")(logits)
    train, model = keras.Model(image, logits), keras.Model(image, probs)
    optimizer = keras.optimizers.Adam(3e-3)

    @tf.function
    def step(x, y, n):
        with tf.GradientTape() as tape:
            out = train(x, training=True)
            loss = tf.reduce_mean(tf.nn.ctc_loss(y, out, n, tf.fill([tf.shape(x)[0]], WIDTH // 4),
                                                 logits_time_major=False, blank_index=BLANK))
        grads = tape.gradient(loss, train.trainable_variables)
        optimizer.apply_gradients(zip(grads, train.trainable_variables))
        return loss

    for _ in range(steps):
        pick = rng.integers(0, len(texts), 32)
        step(images[pick], labels[pick], lengths[pick])
    model.save(path)
    return path


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory):
    root = tmp_path_factory.mktemp("ctc")
    data = root / "lines"
    data.mkdir()
    rng = np.random.default_rng(7)
    for i in range(60):
        render("".join(rng.choice(list(ALPHABET), rng.integers(3, 7)))).save(data / f"line{i:03d}.png")
    return train_recognizer(root / "ctc.keras"), data


def test_ctc_recognizer_reports_sequence_match_and_gates_it(recognizer, tmp_path, edgekit_cli):
    model, data = recognizer
    out = tmp_path / "build"
    result = edgekit_cli("compress", model, "--int8", "--calibration", data, "--color", "grayscale", "--out", out,
                         "--runs", "3", "--warmup", "1", "--no-fallback", "--min-sequence-match", "0.99", "--quiet")
    report = json.loads((out / "report.json").read_text())
    fp32, int8 = (next(a for a in report["artifacts"] if a["precision"] == p) for p in ("fp32", "int8"))
    ctc = int8["accuracy"]["outputs"]["ctc"]
    assert int8["accuracy"]["primary_output"] == "ctc" and ctc["role"] == "sequence"
    assert ctc["blank_index"] == BLANK  # inferred: the float model's most frequent class
    assert fp32["accuracy"]["sequence_match"] == 1.0
    decoded = [e["reference"] for e in ctc["examples"]]
    assert len(decoded) == 5 and len({*decoded}) > 1  # the float model reads different strings
    match = int8["accuracy"]["sequence_match"]
    assert match <= int8["accuracy"]["top1_agreement"] or match == 1.0
    gate = next(g for g in int8["gates"] if g["gate"] == "min_sequence_match")
    assert gate["value"] == match and gate["passed"] == (match >= 0.99)
    assert result.code == (0 if match >= 0.99 else 10)
    if match < 0.99:
        assert "min_sequence_match" in result.err
    page = (out / "report.md").read_text()
    assert "## Decoded sequences (`ctc`, first 5)" in page and f"| {decoded[0]} | " in page
    assert f"seq match {match * 100:.1f}%" in page  # the summary table shows the primary metric
