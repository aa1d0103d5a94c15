"""Small real models for the demo, the tests and the benchmark (nothing is downloaded).

    python -m scripts.models.make_models digits OUT_DIR      # CNN trained on sklearn's bundled digits
    python -m scripts.models.make_models calibration-data    # (re)writes calibration_data/digits

The digits split: the last HOLDOUT images of sklearn's digits are the shipped calibration
set (calibration_data/digits); the model trains on the others only.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np

HOLDOUT = 400
ROOT = Path(__file__).resolve().parent.parent.parent


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images N x 8 x 8 with 0-16 mapped to 0-255, int labels) of sklearn's digits."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    return images, digits.target.astype(np.int64)


def write_calibration_data(out: Path = ROOT / "calibration_data" / "digits", rgb: bool = False) -> None:
    """The last HOLDOUT digits as PNGs (grayscale, or gray replicated to RGB) plus labels.csv."""
    from PIL import Image

    images, labels = digits_images()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(len(images) - HOLDOUT, len(images)):
        name = f"digit_{i:04d}.png"
        image = Image.fromarray(images[i])
        (image.convert("RGB") if rgb else image).save(out / name, optimize=True)
        rows.append((name, int(labels[i])))
    with open(out / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "label"])
        writer.writerows(rows)


def digits_cnn(seed: int = 0, epochs: int = 25, channels: int = 1):
    """A Conv+BN+ReLU6 CNN for 8x8 digits (1 channel, or gray replicated to `channels`), trained on
    the non-holdout images (seconds on CPU)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(seed)
    images, labels = digits_images()
    x = np.repeat(images[:-HOLDOUT, :, :, None].astype(np.float32) / 255.0, channels, axis=-1)
    y = labels[:-HOLDOUT]
    inputs = keras.Input((8, 8, channels), name="image")
    h = keras.layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv1")(inputs)
    h = keras.layers.BatchNormalization(name="bn1")(h)
    h = keras.layers.ReLU(6.0, name="relu1")(h)
    h = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw2")(h)
    h = keras.layers.BatchNormalization(name="bn2")(h)
    h = keras.layers.ReLU(6.0, name="relu2")(h)
    h = keras.layers.Conv2D(32, 1, use_bias=False, name="pw2")(h)
    h = keras.layers.BatchNormalization(name="bn3")(h)
    h = keras.layers.ReLU(name="relu3")(h)
    h = keras.layers.MaxPooling2D(2, name="pool")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    outputs = keras.layers.Dense(10, activation="softmax", name="probs")(h)
    model = keras.Model(inputs, outputs, name="digits_cnn")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, shuffle=True)
    return model


def save_digits(out_dir: Path, channels: int = 1) -> tuple[Path, Path]:
    """Train the digits CNN; save OUT/digits.keras and the SavedModel OUT/digits_savedmodel."""
    import contextlib
    import io

    out_dir.mkdir(parents=True, exist_ok=True)
    model = digits_cnn(channels=channels)
    keras_path, saved_path = out_dir / "digits.keras", out_dir / "digits_savedmodel"
    model.save(keras_path)
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(str(saved_path))
    return keras_path, saved_path


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "calibration-data":
        write_calibration_data()
    elif len(sys.argv) == 3 and sys.argv[1] == "digits":
        for path in save_digits(Path(sys.argv[2])):
            print(path)
    else:
        sys.exit(__doc__)
