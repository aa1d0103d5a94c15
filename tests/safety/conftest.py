"""Fixtures for the safety tests: tiny real models (8x8 grayscale), good data, a good output."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from tests.safety.helpers import snapshot

FAST = ["--runs", "2", "--warmup", "0", "--quiet", "--no-cache"]


def build_keras(path: Path, lambda_layer: bool = False) -> Path:
    """An untrained 8x8x1 -> 3-class model (input 'image'), optionally with a Lambda layer."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Lambda(lambda x: x * 2.0, name="double")(inputs) if lambda_layer else inputs
    h = keras.layers.Conv2D(2, 3, padding="same", name="conv")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    outputs = keras.layers.Dense(3, activation="softmax", name="probs")(h)
    keras.Model(inputs, outputs).save(path)
    return path


def write_images(folder: Path, count: int = 10, size: int = 8, mode: str = "L") -> Path:
    """`count` seeded random PNGs and a labels.csv."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = [("filename", "label")]
    for i in range(count):
        channels = () if mode == "L" else (3,)
        pixels = rng.integers(0, 256, (size, size, *channels), dtype=np.uint8)
        Image.fromarray(pixels, mode=mode).save(folder / f"img_{i:02d}.png")
        rows.append((f"img_{i:02d}.png", str(i % 3)))
    with open(folder / "labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return folder


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Keep edgekit's build cache out of the user's home."""
    os.environ.setdefault("EDGEKIT_CACHE_DIR", str(tmp_path_factory.mktemp("edgekit-cache")))


@pytest.fixture(scope="session")
def gray_keras(tmp_path_factory) -> Path:
    return build_keras(tmp_path_factory.mktemp("gray") / "gray.keras")


@pytest.fixture(scope="session")
def lambda_keras(tmp_path_factory) -> Path:
    return build_keras(tmp_path_factory.mktemp("lambda") / "lambda.keras", lambda_layer=True)


@pytest.fixture(scope="session")
def gray_savedmodel(gray_keras, tmp_path_factory) -> Path:
    import contextlib
    import io

    import keras

    path = tmp_path_factory.mktemp("gray_sm") / "saved"
    with contextlib.redirect_stdout(io.StringIO()):
        keras.saving.load_model(gray_keras).export(str(path))
    return path


@pytest.fixture(scope="session")
def good_images(tmp_path_factory) -> Path:
    return write_images(tmp_path_factory.mktemp("images") / "cal")


def run_cli(*args) -> tuple[int, str]:
    """`edgekit ARGS` in-process, for fixtures (exit code, nothing captured)."""
    from edgekit import interrupts
    from edgekit.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        interrupts.reset()  # main() leaves Ctrl-C held, as the process it expects to end
    return 0


@pytest.fixture(scope="session")
def good_out(gray_keras, good_images, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A complete output of a good run, and the sha256 of each of its files."""
    out = tmp_path_factory.mktemp("good") / "out"
    code = run_cli("compress", gray_keras, "-c", good_images, "--color", "grayscale", "--out", out, *FAST)
    assert code == 0 and (out / "manifest.json").is_file()
    return out, snapshot(out)
