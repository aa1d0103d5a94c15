"""A fleet of tiny real Keras models (different widths) or small ones (MobileNetV3Small at 96x96,
weights=None, different seeds), .npy calibration data and FLEET.yaml (tests/fleet and
python -m scripts.bench.executor)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

SHAPE = (16, 16, 3)


def tiny_model(path: Path, seed: int, width: int) -> Path:
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(SHAPE, name="image")
    h = keras.layers.Conv2D(width, 3, activation="relu", name="conv")(inputs)
    h = keras.layers.Conv2D(width, 3, strides=2, activation="relu", name="conv2")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(h)
    keras.Model(inputs, outputs).save(path)
    return path


SMALL_SHAPE = (96, 96, 3)


def small_model(path: Path, seed: int) -> Path:
    """MobileNetV3Small (alpha 0.75, 10 classes, random weights: nothing downloads) at 96x96,
    raw pixels in (its Rescaling layer inside)."""
    import keras

    keras.utils.set_random_seed(seed)
    keras.applications.MobileNetV3Small(input_shape=SMALL_SHAPE, alpha=0.75, weights=None, classes=10).save(path)
    return path


def calibration(folder: Path, count: int = 24, shape: tuple = SHAPE, scale: float = 1.0) -> Path:
    """`count` uniform random inputs in [0, scale) of `shape` as .npy files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        np.save(folder / f"s{i:03d}.npy", rng.random((1, *shape), dtype=np.float32) * np.float32(scale))
    return folder


def write_fleet(folder: Path, count: int, devices: list[str] = (), inventory: str | None = None,
                models: list[Path] | None = None, small: bool = False) -> Path:
    """FLEET.yaml for `count` tiny (or `small`) models (built once into folder/models) x `devices`."""
    (folder / "models").mkdir(parents=True, exist_ok=True)
    calibration(folder / "data", **({"shape": SMALL_SHAPE, "scale": 255.0} if small else {}))  # raw pixels
    if small:
        models = models or [p if p.exists() else small_model(p, seed=i)
                            for i, p in enumerate(folder / "models" / f"s{i}.keras" for i in range(count))]
    (folder / "int8.yaml").write_text("precisions: [int8]\nvalidation: {runs: 2, warmup_runs: 1}\n")
    paths = models or [p if p.exists() else tiny_model(p, seed=i, width=4 + 2 * i)
                       for i, p in enumerate(folder / "models" / f"m{i}.keras" for i in range(count))]
    fleet = {"version": 1, "models": [{"path": str(p), "recipe": "int8.yaml", "calibration": "data"} for p in paths],
             "devices": list(devices), "bench": {"runs": 3, "warmup": 1}}
    if inventory:
        fleet["inventory"] = inventory
    path = folder / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet, sort_keys=False))
    return path
