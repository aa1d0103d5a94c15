"""The Gradle, Xcode and CI examples' edgekit command lines, run exactly as written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from scripts.models import make_models

EXAMPLES = ROOT / "examples"


def command_block(path: Path) -> str:
    text = path.read_text()
    match = re.search(r">>> edgekit command[^\n]*\n(.*?)\n[^\n]*<<< edgekit command", text, re.S)
    assert match, f"{path} has no marked edgekit command"
    return match.group(1).strip()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """An app project with ml/model.keras (RGB digits CNN) and ml/calibration (RGB PNGs + labels)."""
    make = make_models
    root = tmp_path_factory.mktemp("app")
    model_dir = root / "ml"
    keras_path, _ = make.save_digits(root / "trained", channels=3)
    model_dir.mkdir()
    shutil.copy(keras_path, model_dir / "model.keras")
    make.write_calibration_data(model_dir / "calibration", rgb=True)
    return root


def _env(tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env["EDGEKIT_CACHE_DIR"] = str(tmp_path / "cache")
    return env


def _check_output(out: Path):
    assert (out / "model_int8.tflite").is_file()
    sidecar = json.loads((out / "model_int8.json").read_text())
    assert sidecar["inputs"][0]["name"] == "image" and sidecar["preprocess"]["color"] == "rgb"


def test_gradle_command_line(project, tmp_path):
    line = command_block(EXAMPLES / "android" / "edgekit.gradle.kts")
    out = tmp_path / "build" / "edgekit"
    argv = []
    for quoted, expr in re.findall(r'"([^"]*)"|(edgekitOut\.get\(\)\.asFile\.path)', line):
        argv.append(str(out) if expr else quoted.replace("$projectDir", str(project)))
    assert argv[:2] == ["edgekit", "compress"]
    result = subprocess.run(argv, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    _check_output(out)


@pytest.mark.parametrize("example", ["xcode/edgekit-run-script.sh", "ci/github-workflow.yml"])
def test_shell_command_lines(project, tmp_path, example):
    line = command_block(EXAMPLES / example)
    out = tmp_path / "out"
    env = dict(_env(tmp_path), MODEL=str(project / "ml" / "model.keras"), DATA=str(project / "ml" / "calibration"),
               OUT=str(out))
    result = subprocess.run(["bash", "-euc", line], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    _check_output(out)
    if "--json" in line:
        assert json.loads((tmp_path / "compress.json").read_text())["gates_passed"] is True
