"""Every bad input of issue 2 "Errors", through the real CLI: its exit code, one line naming the
file, no traceback, no output directory created, and a previous good output left byte-identical."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.safety.conftest import FAST, write_images
from tests.safety.helpers import assert_one_line_error, snapshot, staging_leftovers

GRAY = ["--color", "grayscale"]


def _corrupt_keras(good: Path, tmp: Path) -> tuple[list, Path]:
    data = bytearray(good.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])  # CRC or structure breaks
    bad = tmp / "corrupt.keras"
    bad.write_bytes(bytes(data))
    return [bad], bad


def _truncated_keras(good: Path, tmp: Path) -> tuple[list, Path]:
    bad = tmp / "truncated.keras"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    return [bad], bad


def _calibration(tmp: Path, name: str, array) -> tuple[list, Path]:
    folder = tmp / "cal"
    folder.mkdir()
    path = folder / name
    np.save(path, array, allow_pickle=True)  # the attacker's side may pickle
    return ["-c", folder, *GRAY], path


def _images(tmp: Path, **kwargs) -> tuple[list, Path]:
    folder = write_images(tmp / "cal", count=1, **kwargs)
    return ["-c", folder, *GRAY], folder / "img_00.png"


def _recipe(tmp: Path, text: str) -> tuple[list, Path]:
    path = tmp / "recipe.yaml"
    path.write_text(text)
    return ["--recipe", path], path


# name -> (exit code, builder(tmp, model) -> (argv after MODEL, path the error must name), needle)
CASES = {
    "calibration dir empty": (4, lambda tmp, m: (["-c", _mkdir(tmp / "empty"), *GRAY], tmp / "empty"),
                              "no samples found"),
    "calibration dir with one sample": (4, lambda tmp, m: (["-c", write_images(tmp / "cal", 1), *GRAY], tmp / "cal"),
                                        "at least 2 are needed"),
    "image wrong size, no resize": (4, lambda tmp, m: _images(tmp, size=9), "9x9 but the model takes 8x8"),
    "image wrong channels": (4, lambda tmp, m: (["-c", write_images(tmp / "cal", 1, mode="RGB"),
                                                 "--color", "rgb"], tmp / "cal" / "img_00.png"),
                             "has 1 channel(s)"),
    "npy with pickled objects": (4, lambda tmp, m: _calibration(tmp, "obj.npy", np.array([{"a": 1}, None])),
                                 "pickled Python objects"),
    "npy with NaN": (4, lambda tmp, m: _calibration(tmp, "nan.npy", np.full((8, 8, 1), np.nan, np.float32)),
                     "NaN or Inf"),
    "npy with Inf": (4, lambda tmp, m: _calibration(tmp, "inf.npy", np.full((2, 8, 8, 1), -np.inf, np.float32)),
                     "NaN or Inf"),
    "npy wrong dtype": (4, lambda tmp, m: _calibration(tmp, "int.npy", np.zeros((8, 8, 1), np.int32)),
                        "dtype int32 does not match"),
    "npy wrong shape": (4, lambda tmp, m: _calibration(tmp, "shape.npy", np.zeros((8, 8, 3), np.float32)),
                        "does not fit model input"),
    "recipe unknown key": (5, lambda tmp, m: _recipe(tmp, "calibration:\n  num_sampels: 3\n"),
                           "unknown key 'calibration.num_sampels'"),
    "recipe wrong type": (5, lambda tmp, m: _recipe(tmp, "validation:\n  runs: many\n"), "validation.runs"),
    "corrupt .keras": (3, lambda tmp, m: _corrupt_keras(m, tmp), "corrupt or truncated .keras"),
    "truncated .keras": (3, lambda tmp, m: _truncated_keras(m, tmp), "corrupt or truncated .keras"),
}


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


# Cases answered after the model is loaded cost a TensorFlow start each: these two also run into a
# fresh OUT; the others only into the previous good OUT (same atomic-output code path).
FRESH_TOO = {"npy with NaN", "image wrong size, no resize"}
LOADS_MODEL = {name for name, (code, _, _) in CASES.items() if code == 4}


def _check_bad_run(edgekit_cli, argv, code, named, needle, good_out, fresh, fresh_too=True):
    out, before = good_out
    for dest in (fresh, out) if fresh_too else (out,):
        result = edgekit_cli("compress", *argv, "--out", dest, *FAST)
        line = assert_one_line_error(result.code, result.err, code, named)
        assert needle in line
    assert not fresh.exists(), "a failed run created its output directory"
    assert snapshot(out) == before, "a failed run changed the previous good output"
    assert staging_leftovers(out.parent) == [] and staging_leftovers(fresh.parent) == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, gray_keras, good_out, tmp_path, edgekit_cli):
    code, build, needle = CASES[name]
    rest, named = build(tmp_path, gray_keras)
    model = rest.pop(0) if str(rest[0]).endswith(".keras") else gray_keras
    _check_bad_run(edgekit_cli, [model, *rest], code, named, needle, good_out, tmp_path / "new" / "out",
                   fresh_too=name not in LOADS_MODEL or name in FRESH_TOO)


@pytest.mark.parametrize("kind", ["missing", "not a savedmodel"])
def test_bad_model_path(kind, good_out, tmp_path, edgekit_cli):
    model = tmp_path / "nope.keras"
    if kind == "not a savedmodel":
        model = tmp_path / "dir"
        model.mkdir()
        (model / "weights.bin").write_bytes(b"\0" * 16)
    needle = "does not exist" if kind == "missing" else "not a SavedModel"
    _check_bad_run(edgekit_cli, [model], 3, model, needle, good_out, tmp_path / "out")


def test_lambda_refused_unless_trusted(lambda_keras, good_out, tmp_path, edgekit_cli):
    _check_bad_run(edgekit_cli, [lambda_keras], 3, lambda_keras, "Lambda layer 'double'", good_out,
                   tmp_path / "refused")
    out = tmp_path / "trusted"
    result = edgekit_cli("compress", lambda_keras, "--trust-model", "--out", out, *FAST)
    assert result.code == 0, result.err
    assert (out / "model_fp32.tflite").stat().st_size > 0 and (out / "manifest.json").is_file()


def _cli_process(*args, timeout=120) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_output_not_writable_real_process(gray_keras, tmp_path):
    """Root can write anywhere: a path below a regular file really fails, for root too."""
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me\n")
    for out in (blocker / "out", blocker):
        proc = _cli_process("compress", gray_keras, "--out", out, *FAST)
        assert_one_line_error(proc.returncode, proc.stderr, 7, out)
        assert proc.stdout == ""
    assert blocker.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_missing_model_real_process_imports_no_tensorflow(tmp_path):
    """The cheap checks answer before TensorFlow is imported: the error comes fast and clean."""
    proc = _cli_process("compress", tmp_path / "missing.keras", "--out", tmp_path / "o", timeout=30)
    assert proc.stderr == f"edgekit: error: {tmp_path / 'missing.keras'}: does not exist\n"
    assert proc.returncode == 3 and not (tmp_path / "o").exists()
