"""Shared fixtures: a small CNN with BatchNorm trained on sklearn's digits (real data)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]  # NHWC [n, 8, 8, 1]
    return train_test_split(x, data.target, test_size=0.3, random_state=0, stratify=data.target)


@pytest.fixture(scope="session")
def digits_keras(tmp_path_factory, digits):
    """(path of .keras, held-out x, held-out y): Conv+BN+ReLU x2 CNN, ~97% accurate."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    x_train, x_test, y_train, y_test = digits
    layers = tf.keras.layers
    model = tf.keras.Sequential([
        tf.keras.Input((8, 8, 1), name="image"),
        layers.Conv2D(16, 3, padding="same", use_bias=False), layers.BatchNormalization(), layers.ReLU(),
        layers.Conv2D(32, 3, strides=2, padding="same"), layers.BatchNormalization(), layers.ReLU(),
        layers.GlobalAveragePooling2D(), layers.Dropout(0.1), layers.Dense(10),
    ])  # fmt: skip
    model.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=25, batch_size=32, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    assert accuracy > 0.9, accuracy
    path = tmp_path_factory.mktemp("keras") / "digits.keras"
    model.save(path)
    return path, x_test, y_test


@pytest.fixture(scope="session")
def digits_onnx(tmp_path_factory, digits_keras):
    """The digits CNN exported with edgekit's tf2onnx export (opset 17, NHWC input)."""
    from edgekit.sources.tf2onnx_export import export_to_onnx

    path = tmp_path_factory.mktemp("onnx") / "digits.onnx"
    record = export_to_onnx(digits_keras[0], path)
    assert record["opset"] == 17
    return path
