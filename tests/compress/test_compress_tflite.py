"""End to end: real models, real converter, real interpreter, numbers from measurements."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import DIGITS_DATA


@pytest.fixture(scope="module")
def int8_run(digits_models, tmp_path_factory):
    """One INT8+FP16 compress of the trained digits .keras model, shared by the tests below."""
    from edgekit.cli import main

    out = tmp_path_factory.mktemp("int8") / "build"
    with pytest.raises(SystemExit) as exit_info:
        main(["compress", str(digits_models[0]), "--int8", "--fp16", "--calibration", str(DIGITS_DATA),
              "--color", "grayscale", "--out", str(out), "--runs", "20", "--quiet"])
    assert exit_info.value.code == 0
    return out, json.loads((out / "report.json").read_text())


def test_int8_artifacts_are_really_int8_and_accurate(int8_run):
    out, report = int8_run
    by_precision = {a["precision"]: a for a in report["artifacts"]}
    assert set(by_precision) == {"fp32", "fp16", "int8"}
    int8 = by_precision["int8"]
    assert int8["compute_dtypes"] and set(int8["compute_dtypes"]) == {"int8/int8"}
    assert set(by_precision["fp32"]["compute_dtypes"]) == {"float32/float32"}
    assert int8["accuracy"]["accuracy_drop_pts"] <= 1.0
    assert int8["accuracy"]["top1_agreement"] >= 0.97
    assert int8["accuracy"]["reference_accuracy"] >= 0.9  # the CNN really learned the digits
    assert int8["size_ratio"] < 0.6 and by_precision["fp32"]["size_ratio"] == 1.0
    for entry in report["artifacts"]:
        lat = entry["latency"]
        assert lat["runs"] == 20 and lat["threads"] == 1
        assert 0 < lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
        assert lat["cold_start_ms"] > 0
        data = (out / entry["path"]).read_bytes()
        assert len(data) == entry["bytes"]
        import hashlib

        assert hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_int8_tensors_in_the_flatbuffer(int8_run):
    from edgekit.runtime.tflite import load_interpreter

    out, _ = int8_run
    interpreter = load_interpreter(str(out / "model_int8.tflite"))
    details = interpreter._get_ops_details()
    convs = [d for d in details if d["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    assert convs and all(np.dtype(t) == np.int8 for d in convs for t in d["operand_types"][:2])
    assert interpreter.get_input_details()[0]["dtype"] == np.float32  # float I/O by default


def test_report_files_split_and_fusions(int8_run):
    out, report = int8_run
    for name in ("report.md", "report.html", "recipe.yaml", "split.json", "manifest.json"):
        assert (out / name).is_file(), name
    split = json.loads((out / "split.json").read_text())
    assert not set(split["calibration"]) & set(split["validation"])
    assert report["calibration"]["calibration_samples"] == len(split["calibration"]) == 300
    assert report["calibration"]["validation_samples"] == len(split["validation"]) > 50
    summaries = [g["summary"] for g in report["fusion"]["tflite"]["groups"]]
    assert "Conv2D + BatchNorm + ReLU6 -> CONV_2D (RELU6)" in summaries
    assert "DepthwiseConv2D + BatchNorm + ReLU6 -> DEPTHWISE_CONV_2D (RELU6)" in summaries
    assert report["model"]["fixed_dims"] == {"image": {"from": "?x8x8x1", "to": "1x8x8x1"}}
    assert "data:image/png;base64," in (out / "report.html").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [a["name"] for a in manifest["artifacts"]] == [a["name"] for a in report["artifacts"]]


def test_savedmodel_int8_io_and_json_stdout(digits_models, tmp_path, edgekit_cli):
    out = tmp_path / "sm"
    result = edgekit_cli("compress", digits_models[1], "--int8", "--io-dtype", "int8", "--calibration", DIGITS_DATA,
                         "--color", "grayscale", "--num-calibration", "120", "--out", out, "--json",
                         "--runs", "5")
    assert result.code == 0, result.err
    summary = json.loads(result.out)  # stdout holds the JSON only
    assert summary == json.loads((out / "report.json").read_text())
    int8 = [a for a in summary["artifacts"] if a["precision"] == "int8"][0]
    assert int8["details"]["io_dtype"] == "int8"
    assert int8["accuracy"]["accuracy_drop_pts"] <= 1.0
    from edgekit.runtime.tflite import load_interpreter

    assert load_interpreter(str(out / "model_int8.tflite")).get_input_details()[0]["dtype"] == np.int8


def test_dynamic_dims_fixed_by_flag(tmp_path, edgekit_cli):
    import keras

    inputs = keras.Input((None, None, 3), name="pixels")
    h = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    outputs = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    path = tmp_path / "dyn.keras"
    keras.Model(inputs, outputs).save(path)
    result = edgekit_cli("compress", path, "--out", tmp_path / "o", "--input-shape", "pixels:1x12x10x3", "--json", "--runs", "3")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["model"]["fixed_dims"] == {"pixels": {"from": "?x?x?x3", "to": "1x12x10x3"}}
    assert report["model"]["inputs"][0]["shape"] == [1, 12, 10, 3]
    assert report["calibration"]["synthetic"] is True
    bad = edgekit_cli("compress", path, "--out", tmp_path / "o2", "--input-shape", "pixels:1x12x10x4")
    assert bad.code == 2 and "does not fit" in bad.err


def test_gate_missed_still_writes_report(tiny_keras, tmp_path, edgekit_cli):
    out = tmp_path / "gated"
    result = edgekit_cli("compress", tiny_keras, "--fp16", "--out", out, "--max-size", "100", "--runs", "3", "--quiet")
    assert result.code == 10
    assert "max_size_bytes" in result.err and len(result.err.strip().splitlines()) == 1
    report = json.loads((out / "report.json").read_text())
    assert report["gates_passed"] is False
    assert (out / "model_fp16.tflite").is_file()


def test_compress_then_bench_on_a_device_in_one_command(tiny_keras, tmp_path, edgekit_cli):
    out = tmp_path / "dev"
    result = edgekit_cli("compress", tiny_keras, "--dynamic", "--out", out, "--device", "local", "--runs", "3",
                         "--quiet")
    assert result.code == 0, result.err
    bench = json.loads((out / "bench" / "bench.json").read_text())
    rows = {row["artifact"]: row for row in bench["rows"]}
    assert set(rows) == {"model_fp32.tflite", "model_dynamic.tflite"}
    assert all(row["status"] == "ok" and row["latency"]["p50_ms"] > 0 for row in rows.values())
    with np.load(out / "validation_inputs.npz", allow_pickle=False) as held_out:
        assert held_out["image"].shape[1:] == (16, 16, 3)
