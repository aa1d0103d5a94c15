"""The zoo tier's fixtures: model files out of wheels (tests/zoo/wheels.py), or a skip (a failure under CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.zoo import wheels
from scripts.models import text_lines


def _missing(message: str):
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def zoo_files(tmp_path_factory):
    """zoo_files(key) -> the path of wheels.FILES[key], extracted once per session."""
    folder = tmp_path_factory.mktemp("zoo_files")

    def get(key: str) -> Path:
        try:
            return wheels.member(key, folder)
        except wheels.MissingWheel as err:
            _missing(str(err))

    return get


@pytest.fixture(scope="session")
def paddle_models() -> Path:
    folder = text_lines.paddle_models()
    if folder is None:
        _missing("rapidocr-onnxruntime is not installed (scripts/setup.sh installs it)")
    return folder
