"""PyTorch models in: a .pt2 archive and an entry point, built to INT8 ONNX and validated against
the PyTorch model; bad inputs are one-line errors with the documented exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.safety.helpers import assert_one_line_error


@pytest.fixture(scope="module")
def pt2_build(torch_digits, tmp_path_factory):
    from edgekit.cli import main

    out = tmp_path_factory.mktemp("pt2") / "build"
    with pytest.raises(SystemExit) as exit_info:
        main(["compress", str(torch_digits.pt2), "--int8", "-c", str(torch_digits.calibration), "-t", "onnx",
              "--out", str(out), "--runs", "3", "--quiet"])
    assert exit_info.value.code == 0
    return out, json.loads((out / "report.json").read_text())


def _accuracy(path, x, y) -> float:
    from edgekit.runtime.onnx import OnnxRunner

    runner = OnnxRunner(path, threads=1)
    name, out = runner.inputs[0].name, runner.outputs[0].name
    return float(np.mean([runner.run({name: x[i : i + 1]})[out].argmax() == y[i] for i in range(len(x))]))


def test_pt2_to_int8_onnx_within_a_point_of_pytorch(pt2_build, torch_digits):
    out, report = pt2_build
    assert report["model"]["format"] == "pt2"
    assert report["model"]["fixed_dims"] == {"image": {"from": "?x1x8x8", "to": "1x1x8x8"}}
    export = report["model"]["export"]
    assert export["opset"] == 18 and export["exporter"].startswith("torch.onnx (dynamo)")
    assert export["max_relative_error"] < 1e-4 and export["samples"] == report["calibration"]["validation_samples"]
    rows = {a["precision"]: a for a in report["artifacts"]}
    assert set(rows) == {"fp32", "int8"}
    assert rows["fp32"]["accuracy"]["top1_agreement"] == 1.0  # validated against the PyTorch outputs
    assert rows["int8"]["op_counts"].get("QuantizeLinear", 0) > 0
    # INT8 accuracy on the labelled held-out test set, measured outside edgekit
    int8 = _accuracy(out / rows["int8"]["path"], torch_digits.x_test, torch_digits.y_test)
    assert int8 >= torch_digits.float_accuracy - 0.01, (int8, torch_digits.float_accuracy)
    folds = [g for g in report["fusion"]["onnx"]["groups"] if g["pass"] == "fold_batchnorm"]
    assert len(folds) == 2
    first = (out / "report.md").read_text().splitlines()[2]
    assert first.startswith("Export: torch.onnx (dynamo)") and "ONNX FP32 vs PyTorch" in first


@pytest.mark.slow  # a second export of the same network (~16 s loaded); the .pt2 test covers the export path
def test_entry_point_from_pythonpath(torch_digits, tmp_path):
    """A separate process, as a user runs it: the module is found on PYTHONPATH (cwd elsewhere)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(torch_digits.folder), str(ROOT)])}
    out = tmp_path / "build"
    proc = subprocess.run([sys.executable, "-m", "edgekit", "compress", "digits_net:build", "--trust-model",
                           "--input-shape", "image:1x1x8x8", "--int8", "-c", str(torch_digits.calibration),
                           "--out", str(out), "--runs", "2", "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["model"]["format"] == "torch-entry" and report["recipe"]["targets"] == "onnx"
    assert report["model"]["export"]["module_file"] == str(torch_digits.folder / "digits_net.py")
    int8 = next(a for a in report["artifacts"] if a["precision"] == "int8")
    assert int8["accuracy"]["top1_agreement"] >= 0.97
    assert _accuracy(out / int8["path"], torch_digits.x_test, torch_digits.y_test) >= torch_digits.float_accuracy - 0.01


@pytest.mark.parametrize(("args", "code", "words"), [
    (["digits_net:build"], 3, "pass --trust-model"),
    (["digits_net:broken", "--trust-model", "--input-shape", "image:1x1x8x8"], 3,
     "the entry point raised RuntimeError: weights missing"),
    (["digits_net:not_a_module", "--trust-model", "--input-shape", "image:1x1x8x8"], 3,
     "returned dict, not a torch.nn.Module"),
    pytest.param(["digits_net:missing", "--trust-model", "--input-shape", "image:1x1x8x8"], 3,
                 "module 'digits_net' has no function 'missing'", marks=pytest.mark.slow),
    pytest.param(["digits_net:build", "--trust-model"], 2,
                 "needs --input-shape for each forward() input: image:1x...", marks=pytest.mark.slow),
    (["digits_net:build", "--trust-model", "--input-shape", "image:1x1x8x8", "-t", "tflite"], 2,
     "the tflite target needs a TensorFlow model"),
])  # fmt: skip
def test_bad_entry_points(torch_digits, edgekit_cli, monkeypatch, tmp_path, args, code, words):
    monkeypatch.chdir(torch_digits.folder)  # the module is found in the current directory
    result = edgekit_cli("compress", *args, "--out", tmp_path / "o", "--no-cache", "--quiet")
    if code == 2 and "--input-shape" not in words:  # usage errors name no path
        assert result.code == 2 and words in result.err, result.err
        return
    line = assert_one_line_error(result.code, result.err, code, args[0]) if code == 3 else result.err
    assert result.code == code and words in line, result.err


def test_bad_pt2_files(tmp_path, edgekit_cli):
    not_zip = tmp_path / "model.pt2"
    not_zip.write_bytes(b"\x80\x02 a pickle, not an archive")
    line = assert_one_line_error(*_run(edgekit_cli, not_zip, tmp_path), 3, not_zip)
    assert "not a zip archive" in line
    other_zip = tmp_path / "other.pt2"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("model/data.pkl", b"x")
    line = assert_one_line_error(*_run(edgekit_cli, other_zip, tmp_path), 3, other_zip)
    assert "not a torch.export archive" in line
    escaping = tmp_path / "escape.pt2"
    with zipfile.ZipFile(escaping, "w") as archive:
        archive.writestr("../evil/archive_format", b"1")
    assert "escapes the archive" in assert_one_line_error(*_run(edgekit_cli, escaping, tmp_path), 3, escaping)
    pickle = tmp_path / "model.pth"
    pickle.write_bytes(b"\x80\x02}q\x00.")
    assert "pickled PyTorch checkpoint" in assert_one_line_error(*_run(edgekit_cli, pickle, tmp_path), 3, pickle)


def _run(edgekit_cli, model, tmp_path):
    result = edgekit_cli("compress", model, "--out", tmp_path / "o", "--quiet")
    return result.code, result.err


def test_entry_point_syntax():
    from edgekit.model.checks import is_entry_point

    assert is_entry_point("pkg.models:build") and is_entry_point("m:f")
    assert not is_entry_point("model.onnx") and not is_entry_point("pkg.mod:") and not is_entry_point("a:b:c")
    assert not is_entry_point("dir/mod:f") and not is_entry_point("1pkg:f")


@pytest.mark.slow
def test_debug_takes_a_pt2(torch_digits, edgekit_cli, tmp_path):
    """`edgekit debug` prepares the model through the same source: the exported, fused ONNX graph."""
    result = edgekit_cli("debug", torch_digits.pt2, "-c", torch_digits.calibration, "--out", tmp_path / "d", "--quiet")
    assert result.code == 0, result.err
    document = json.loads((tmp_path / "d" / "debug.json").read_text())
    assert document["target"] == "onnx"
