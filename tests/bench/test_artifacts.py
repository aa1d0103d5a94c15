"""Artifact discovery from a build dir: manifest checks, globbing, precision guesses."""

from __future__ import annotations

import json

import pytest

from edgekit.bench.artifacts import discover, guess_precision
from edgekit.errors import ModelError


def test_manifest_order_and_fields(build_dir):
    arts = discover(build_dir)
    assert [(a.name, a.format, a.precision) for a in arts] == [
        ("model_fp32.tflite", "tflite", "fp32"), ("model_int8.tflite", "tflite", "int8"),
        ("model_fp32.onnx", "onnx", "fp32")]
    assert all(a.path.is_file() and a.bytes == a.path.stat().st_size for a in arts)


def test_changed_artifact_is_refused(build_dir):
    (build_dir / "model_int8.tflite").write_bytes(b"tampered")
    with pytest.raises(ModelError, match="model_int8.tflite does not match its manifest"):
        discover(build_dir)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(schema_version=2), "schema_version"),
    (lambda m: m["artifacts"][0].update(name="../../etc/passwd"), "artifacts.0.name"),
    (lambda m: m["artifacts"][0].update(format="pt"), "artifacts.0.format"),
    (lambda m: m["artifacts"][0].update(name="gone.tflite"), "gone.tflite, which is missing"),
])
def test_bad_manifest_names_the_key(build_dir, edit, message):
    path = build_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=message) as info:
        discover(build_dir)
    assert str(path) in str(info.value)


def test_without_manifest_globs_and_guesses(build_dir):
    (build_dir / "manifest.json").unlink()
    (build_dir / "notes.txt").write_text("x")
    (build_dir / "model_fp32.tflite").rename(build_dir / "plain.tflite")
    arts = discover(build_dir)
    assert [(a.name, a.precision) for a in arts] == [
        ("model_fp32.onnx", "fp32"), ("model_int8.tflite", "int8"), ("plain.tflite", "unknown")]
    assert discover(build_dir / "plain.tflite")[0].format == "tflite"


def test_empty_or_missing(tmp_path):
    with pytest.raises(ModelError, match="no manifest.json and no .tflite/.onnx"):
        discover(tmp_path)
    with pytest.raises(ModelError, match="no such build directory"):
        discover(tmp_path / "nope")


@pytest.mark.parametrize("name, precision", [
    ("m_int8.tflite", "int8"), ("m-qdq.onnx", "int8"), ("m_float16.tflite", "fp16"),
    ("m_dynamic.tflite", "dynamic"), ("model.onnx", "unknown"), ("print8.tflite", "unknown")])
def test_guess_precision(name, precision):
    assert guess_precision(name) == precision
