"""`edgekit bench --accuracy` (device outputs vs the host FP32 run) and sustained mode over ssh."""

from __future__ import annotations

import numpy as np

from tests.bench.conftest import ssh_entry
from tests.bench.test_bench_cli import bench, load

SAMPLES = 6


def test_accuracy_on_ssh_and_local(build_dir, sshd, write_inventory, tmp_path):
    rng = np.random.default_rng(3)
    # held-out inputs for the TFLite models only: the ONNX model's input 'x' is (1, 32)
    np.savez(build_dir / "validation_inputs.npz",
             image=rng.standard_normal((SAMPLES, 16, 16, 3)).astype(np.float32))
    inventory = write_inventory({"board": ssh_entry(sshd, tmp_path / "remote")})
    out = tmp_path / "report"
    code = bench(build_dir, "--device", "board", "--device", "local", "--inventory", inventory,
                 "--accuracy", "--runs", 5, "--warmup", 1, "--out", out)
    assert code == 0
    report = load(out)
    assert report["settings"]["accuracy_inputs"].endswith("validation_inputs.npz")
    for device in ("board", "local"):
        rows = {r["artifact"]: r for r in report["rows"] if r["device"] == device}
        fp32, int8 = rows["model_fp32.tflite"]["accuracy"], rows["model_int8.tflite"]["accuracy"]
        assert fp32["reference"] == int8["reference"] == "model_fp32.tflite on the host"
        (same,) = fp32["outputs"]  # the same runtime on the same inputs: bit-identical
        assert same["max_abs_error"] == 0 and same["sqnr_db"] is None and same["top1_agreement"] == 1
        (quant,) = int8["outputs"]
        assert fp32["samples"] == int8["samples"] == SAMPLES
        assert 0 < quant["max_abs_error"] < 0.5 and quant["cosine"] > 0.9 and quant["sqnr_db"] > 5
        assert 0 <= quant["top1_agreement"] <= 1
        onnx = rows["model_fp32.onnx"]
        assert onnx["status"] == "ok" and onnx["latency"]["runs"] == 5  # latency still measured
        assert "model wants [1, 32]" in onnx["accuracy"]["error"]
        back = np.load(out / "outputs" / device / "model_int8.tflite.npz")
        assert next(iter(back.values())).shape == (SAMPLES, 4)
    md = (out / "bench.md").read_text()
    assert "On-device accuracy vs the host FP32 run" in md and "Accuracy not measured" in md


def test_accuracy_without_inputs_is_usage_error(build_dir, tmp_path, capsys):
    assert bench(build_dir, "--accuracy", "--out", tmp_path / "r") == 2
    assert "validation_inputs.npz" in capsys.readouterr().err


def test_sustained_over_ssh_latency_over_time(build_dir, sshd, write_inventory, tmp_path):
    inventory = write_inventory({"board": ssh_entry(sshd, tmp_path / "remote")})
    out = tmp_path / "report"
    code = bench(build_dir / "model_int8.tflite", "--device", "board", "--inventory", inventory,
                 "--duration", "3s", "--threads", 1, "--out", out)
    assert code == 0
    (row,) = load(out)["rows"]
    stamps = row["timestamps_s"]
    assert row["sustained_s"] == 3.0 and stamps[-1] < 3.0 < stamps[-1] + 0.2
    assert len(row["latencies_ms"]) == len(stamps) == row["latency"]["runs"] > 100
    assert row["throttling"]["slowdown"] is not None  # measured, not judged from a guess
    page = (out / "bench.html").read_text()
    assert 'alt="latency over time model_int8.tflite"' in page
