"""Shared fixtures: real models built (and trained) here, and an in-process CLI runner."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests never read or fill the user's build cache; tests that need a cache set their own.
os.environ["EDGEKIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="edgekit-test-cache-")
from scripts.models import DIGITS_DATA, ROOT  # noqa: E402,F401  (the builders shared with the demo and benchmarks)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _edgekit_logger_fresh():
    """Each test starts with the 'edgekit' logger as a fresh process has it (no handler, level
    unset, propagating): the in-process CLI (edgekit.logs.setup_logging), also from a session
    fixture, stops it propagating, and a later test's caplog would see none of its lines."""
    logger = logging.getLogger("edgekit")
    logger.handlers[:] = []
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    yield


@pytest.fixture
def edgekit_cli(capfd):
    """Run `edgekit ARGS` in-process; returns CliResult(code, stdout, stderr)."""
    from edgekit import interrupts
    from edgekit.cli import main

    def run(*args) -> CliResult:
        capfd.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            interrupts.reset()  # main() leaves Ctrl-C held, as the process it expects to end
        captured = capfd.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def digits_models(tmp_path_factory) -> tuple[Path, Path]:
    """(digits.keras, digits_savedmodel/) of the CNN trained on sklearn's digits."""
    from scripts.models import make_models

    return make_models.save_digits(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def tiny_keras(tmp_path_factory) -> Path:
    """An untrained Conv+BN+ReLU6 functional model with a dynamic batch (16x16x3 input)."""
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((16, 16, 3), name="image")
    h = keras.layers.Conv2D(8, 3, use_bias=False, name="conv")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.ReLU(6.0, name="relu")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(h)
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    keras.Model(inputs, outputs).save(path)
    return path
