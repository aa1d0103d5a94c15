"""Inputs for scripts/bench/run.py: models and calibration images, all generated here (no downloads).

- `write_images(folder, count, size)`: seeded RGB PNGs (smooth gradients + low-frequency blobs +
  pixel noise), named img_00000.png...; the same (seed, index) always gives the same image.
- `load_image(path, size, color, scale, offset)`: the "raw library" loader the baselines use
  (PIL + numpy: convert colour, resize bilinear, x * scale + offset, batch of 1, float32).
- `save_mobilenet(out, size)`: keras MobileNetV2(weights=None), logits output, BatchNorm statistics
  re-estimated on synthetic images (see its docstring), as a SavedModel (and .keras).
- `save_digits(out)`: the digits CNN of scripts/models/make_models.py (trained on sklearn's digits).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent
DIGITS_DATA = ROOT / "calibration_data" / "digits"


def synthetic_image(size: int, seed: int, index: int) -> np.ndarray:
    """One HxWx3 uint8 image: a random-direction colour ramp, smooth blobs and pixel noise."""
    rng = np.random.default_rng([seed, index])
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    angle = rng.uniform(0, 2 * np.pi, 3)
    ramp = (np.cos(angle) * x[..., None] + np.sin(angle) * y[..., None] + 1.0) / 2.0
    grid = rng.random((4, 4, 3)).astype(np.float32)  # 4x4 control points -> smooth blobs
    cells = np.linspace(0, 3, size)
    lo = np.floor(cells).astype(int).clip(0, 2)
    frac = (cells - lo)[:, None]
    rows = grid[lo] * (1 - frac[..., None]) + grid[lo + 1] * frac[..., None]  # size x 4 x 3
    blobs = rows[:, lo] * (1 - frac.T[..., None]) + rows[:, lo + 1] * frac.T[..., None]
    noise = rng.normal(0, 0.08, (size, size, 3))
    image = 0.5 * ramp + 0.5 * blobs + noise
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def write_images(folder: Path, count: int, size: int, seed: int = 0) -> list[Path]:
    """Write `count` seeded size x size RGB PNGs into `folder`; returns their paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"img_{i:05d}.png"
        Image.fromarray(synthetic_image(size, seed, i)).save(path, compress_level=1)
        paths.append(path)
    return paths


def load_image(path: Path, size: tuple[int, int], color: str, scale: float, offset: float) -> np.ndarray:
    """The baselines' own loader: PIL decode, colour, bilinear resize, x * scale + offset, [None]."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("L" if color == "grayscale" else "RGB")
        if img.size != (size[1], size[0]):
            img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        array = np.asarray(img, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    return np.ascontiguousarray((array * scale + offset)[None], dtype=np.float32)


def read_labels(folder: Path) -> dict[str, int]:
    """filename -> label from folder/labels.csv."""
    with open(folder / "labels.csv", newline="") as handle:
        return {row["filename"]: int(row["label"]) for row in csv.DictReader(handle)}


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def save_mobilenet(out_dir: Path, size: int = 224, seed: int = 0, bn_images: int = 16) -> dict[str, Path]:
    """MobileNetV2(weights=None, input_shape=(size, size, 3), classifier_activation=None), seeded,
    with its BatchNorm statistics re-estimated on `bn_images` synthetic images (seed + 2); saved
    as a SavedModel and a .keras file.

    Why not the bare initialisation: with weights=None every BatchNorm holds mean 0 / variance 1,
    activations shrink ~1e4x per few blocks (1e-12 at the last layer), the softmax output is the
    constant 0.001 and INT8 quantizes it to 0, so agreement and SQNR would measure nothing.
    Logits (no softmax) keep the output comparable. Weights stay random; only the BN moving
    statistics change (one training-mode pass with momentum 0), so shapes, ops and sizes are those
    of MobileNetV2.
    """
    _quiet_tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(size, size, 3), classifier_activation=None)
    if bn_images:
        images = np.stack([synthetic_image(size, seed + 2, i) for i in range(bn_images)]).astype(np.float32)
        norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
        momentum = [layer.momentum for layer in norms]
        for layer in norms:
            layer.momentum = 0.0
        model(images * (2 / 255) - 1.0, training=True)
        for layer, value in zip(norms, momentum):
            layer.momentum = value
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"keras": out_dir / "mobilenet_v2.keras", "savedmodel": out_dir / "mobilenet_v2_savedmodel"}
    model.save(paths["keras"])
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(str(paths["savedmodel"]))
    return paths


def save_digits(out_dir: Path) -> dict[str, Path]:
    """The trained digits CNN of scripts/models/make_models.py: SavedModel + .keras."""
    _quiet_tensorflow()
    from scripts.models import make_models

    keras_path, saved = make_models.save_digits(out_dir)
    return {"keras": keras_path, "savedmodel": saved}
