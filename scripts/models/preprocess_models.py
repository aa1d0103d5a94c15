"""Five image models trained on sklearn's digits, each expecting a different preprocessing.

Used by tests/compress/test_preprocessing.py (the preprocessing issue's acceptance). Images are the
digits upscaled to 16x16; colour models see them tinted (R, G, B) = (1.0, 0.6, 0.2) x gray, so
channel order matters. Splits: train on the first TRAIN images, CALIB images go to the data
directory given to edgekit (with labels.csv), the rest is a test set edgekit never sees.

    kind        input                        trained on
    rescaling   16x16x3 uint8-valued floats  raw 0..255, Rescaling(1/255) inside the model
    symmetric   16x16x3                      x / 127.5 - 1
    imagenet    3x16x16 (NCHW, ONNX)         ImageNet mean/std on [0, 1]
    bgr         16x16x3                      [0, 1], channels in BGR order
    grayscale   16x16x1                      [0, 1]
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

TRAIN, CALIB = 1000, 400
TINT = np.array([1.0, 0.6, 0.2], np.float32)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
KINDS = ("rescaling", "symmetric", "imagenet", "bgr", "grayscale")
# What edgekit should choose for each (fields compared with report.json's preprocessing values).
EXPECTED = {
    "rescaling": {"scale": 1.0, "offset": 0.0, "mean": None, "color": "rgb", "layout": "nhwc"},
    "symmetric": {"scale": 2 / 255, "offset": -1.0, "mean": None, "color": "rgb", "layout": "nhwc"},
    "imagenet": {"scale": 1 / 255, "offset": 0.0, "mean": IMAGENET_MEAN.tolist(), "color": "rgb", "layout": "nchw"},
    "bgr": {"scale": 1 / 255, "offset": 0.0, "mean": None, "color": "bgr", "layout": "nhwc"},
    "grayscale": {"scale": 1 / 255, "offset": 0.0, "mean": None, "color": "grayscale", "layout": "nhwc"},
}


def pixels(gray: bool) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 N x 16 x 16 x C pixels as saved to PNG, labels)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images, np.ones((2, 2))) * (255 / 16)
    images = images[..., None] if gray else images[..., None] * TINT
    return np.round(images).astype(np.uint8), digits.target.astype(np.int64)


def model_input(kind: str, px: np.ndarray) -> np.ndarray:
    """Pixels -> what the model of `kind` was trained on."""
    x = px.astype(np.float32)
    if kind == "rescaling":
        return x
    if kind == "symmetric":
        return x / 127.5 - 1.0
    if kind == "imagenet":
        return ((x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(0, 3, 1, 2)
    if kind == "bgr":
        return x[..., ::-1] / 255.0
    return x / 255.0


def _keras_model(kind: str, x: np.ndarray, y: np.ndarray):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input(x.shape[1:], name="pixels")
    h = inputs
    if kind == "rescaling":
        h = keras.layers.Rescaling(1 / 255, name="rescaling")(h)
    if kind == "imagenet":
        h = keras.layers.Permute((2, 3, 1), name="to_nhwc")(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(h)
    h = keras.layers.MaxPooling2D(2, name="pool1")(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.MaxPooling2D(2, name="pool2")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    outputs = keras.layers.Dense(10, activation="softmax", name="probs")(h)
    model = keras.Model(inputs, outputs, name=f"digits_{kind}")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=15, batch_size=64, verbose=0, shuffle=True)
    return model


def build(kind: str, out: Path) -> tuple[Path, Path, tuple[np.ndarray, np.ndarray]]:
    """Train `kind`, save it (.keras, or .onnx for imagenet) and its data dir; return
    (model path, data dir, (test model inputs, test labels))."""
    px, labels = pixels(kind == "grayscale")
    model = _keras_model(kind, model_input(kind, px[:TRAIN]), labels[:TRAIN])
    out.mkdir(parents=True, exist_ok=True)
    if kind == "imagenet":
        import tensorflow as tf
        import tf2onnx

        path = out / f"{kind}.onnx"
        spec = [tf.TensorSpec((None, 3, 16, 16), tf.float32, name="pixels")]
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=13, output_path=str(path))
    else:
        path = out / f"{kind}.keras"
        model.save(path)
    data = out / "data"
    write_images(px[TRAIN:TRAIN + CALIB], labels[TRAIN:TRAIN + CALIB], data)
    return path, data, (model_input(kind, px[TRAIN + CALIB:]), labels[TRAIN + CALIB:])


def write_images(px: np.ndarray, labels: np.ndarray, folder: Path) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (image, label) in enumerate(zip(px, labels)):
        name = f"d{i:04d}.png"
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(folder / name)
        rows.append((name, int(label)))
    with open(folder / "labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("filename", "label"), *rows])
