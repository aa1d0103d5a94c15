"""Digits CNN with a planted outlier channel (issue #13, step 2), built and trained here.

    python -m scripts.models.outlier OUT_DIR     # writes OUT_DIR/outlier.keras

One channel of the uncapped ReLU block (conv1 -> relu1 -> MaxPool) is scaled x`factor` (kernel
and bias) and the next depthwise kernel's channel divided by `factor`: ReLU and MaxPool commute
with a positive scale, so the float function is unchanged, but that channel now sets the INT8
range of the tensors between, and every other channel rounds to a handful of levels.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from scripts.models.make_models import HOLDOUT, digits_images


def outlier_cnn(factor: float = 400.0, seed: int = 0, epochs: int = 20):
    """(trained model with the outlier planted, the same model before planting); 8x8x1 input."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(seed)
    images, labels = digits_images()
    x = images[:-HOLDOUT, :, :, None].astype(np.float32) / 255.0
    inputs = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Conv2D(16, 3, padding="same", name="conv1")(inputs)
    h = keras.layers.ReLU(name="relu1")(h)
    h = keras.layers.MaxPooling2D(2, name="pool1")(h)
    h = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw2")(h)
    h = keras.layers.Conv2D(32, 1, activation="relu", name="pw2")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    outputs = keras.layers.Dense(10, activation="softmax", name="probs")(h)
    model = keras.Model(inputs, outputs, name="outlier_cnn")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, labels[:-HOLDOUT], epochs=epochs, batch_size=64, verbose=0)
    plain = keras.models.clone_model(model)
    plain.set_weights(model.get_weights())
    conv, dw = model.get_layer("conv1"), model.get_layer("dw2")
    relu = keras.Model(inputs, model.get_layer("relu1").output).predict(x, verbose=0)
    channel = int(np.argmax(relu.max(axis=(0, 1, 2))))  # the most active channel: it matters
    kernel, bias = conv.get_weights()
    kernel[..., channel] *= factor
    bias[channel] *= factor
    conv.set_weights([kernel, bias])
    dw_kernel, dw_bias = dw.get_weights()
    dw_kernel[:, :, channel, :] /= factor
    dw.set_weights([dw_kernel, dw_bias])
    return model, plain


def save_outlier(out_dir: Path, factor: float = 400.0) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    model, _ = outlier_cnn(factor)
    path = out_dir / "outlier.keras"
    model.save(path)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(save_outlier(Path(sys.argv[1])))
