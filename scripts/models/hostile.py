"""The INT8-hostile digits CNN: a planted pair of 1x1 convs, `outlier_up` (channel 0 times
OUTLIER_GAIN) and `outlier_down` (its inverse). The float model is unchanged, but the tensor
between them holds one channel OUTLIER_GAIN times larger than the others, so its per-tensor INT8
scale flattens every other channel. Trained on sklearn's digits (~10 s)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

OUTLIER_GAIN = 1000.0
PLANTED = ("outlier_up", "outlier_down")


def _channel_gain(channels: int, gain: float) -> np.ndarray:
    """A 1x1 conv kernel that passes every channel through and multiplies channel 0 by `gain`."""
    kernel = np.eye(channels, dtype=np.float32).reshape(1, 1, channels, channels)
    kernel[0, 0, 0, 0] = gain
    return kernel


def hostile_digits_cnn(seed: int = 0, epochs: int = 15, gain: float = OUTLIER_GAIN):
    """The digits CNN with the planted outlier pair after relu1, trained on the non-holdout digits."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from scripts.models import make_models

    keras.utils.set_random_seed(seed)
    images, labels = make_models.digits_images()
    x = images[:-make_models.HOLDOUT, :, :, None].astype(np.float32) / 255.0
    y = labels[:-make_models.HOLDOUT]
    layers = keras.layers
    inputs = keras.Input((8, 8, 1), name="image")
    h = layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv1")(inputs)
    h = layers.BatchNormalization(name="bn1")(h)
    h = layers.ReLU(6.0, name="relu1")(h)
    h = layers.Conv2D(16, 1, use_bias=False, trainable=False, name="outlier_up")(h)
    h = layers.Conv2D(16, 1, use_bias=False, trainable=False, name="outlier_down")(h)
    h = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw2")(h)
    h = layers.BatchNormalization(name="bn2")(h)
    h = layers.ReLU(6.0, name="relu2")(h)
    h = layers.Conv2D(32, 1, use_bias=False, name="pw2")(h)
    h = layers.BatchNormalization(name="bn3")(h)
    h = layers.ReLU(name="relu3")(h)
    h = layers.MaxPooling2D(2, name="pool")(h)
    h = layers.Flatten(name="flatten")(h)
    outputs = layers.Dense(10, activation="softmax", name="probs")(h)
    model = keras.Model(inputs, outputs, name="hostile_cnn")
    model.get_layer("outlier_up").set_weights([_channel_gain(16, gain)])
    model.get_layer("outlier_down").set_weights([_channel_gain(16, 1 / gain)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, shuffle=True)
    return model


def save_hostile(out_dir: Path, **kwargs) -> Path:
    """Train and save OUT/hostile.keras."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "hostile.keras"
    hostile_digits_cnn(**kwargs).save(path)
    return path
