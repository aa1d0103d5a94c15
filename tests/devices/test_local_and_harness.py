"""The harness run directly and through LocalDevice: real runtimes, real timings."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from edgekit.devices.local import LocalDevice
from edgekit.errors import DeviceInconclusive, DeviceToolError
from tests.devices.test_ssh import HARNESS


def harness(*args, timeout=60):
    proc = subprocess.run([sys.executable, str(HARNESS), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.parametrize("which", ["fp32", "int8", "onnx"])
def test_harness_measures(tiny_models, which):
    code, out = harness(tiny_models[which], "--runs", 12, "--warmup", 3, "--threads", 1)
    assert code == 0 and out["ok"]
    assert len(out["latencies_ms"]) == 12 == len(out["timestamps_s"])
    assert out["timestamps_s"] == sorted(out["timestamps_s"])
    assert out["cold_start_ms"] == pytest.approx(out["load_ms"] + out["first_inference_ms"], abs=1e-3)
    assert out["peak_rss_mb"] > 10 and out["numpy"] == np.__version__
    expected = "int8" if which == "int8" else "float32"
    assert out["inputs"][0]["dtype"] == expected


def test_harness_sustained_window(tiny_models):
    start = time.monotonic()
    code, out = harness(tiny_models["onnx"], "--duration", 0.5, "--warmup", 0)
    assert code == 0 and out["duration_s"] == 0.5
    assert 0.5 <= out["wall_s"] < 0.6 and len(out["latencies_ms"]) > 20
    assert time.monotonic() - start < 20


def test_harness_inputs_outputs_npz(tiny_models, tmp_path):
    x = np.random.default_rng(3).standard_normal((1, 16, 16, 3)).astype(np.float32)
    np.savez(tmp_path / "in.npz", image=x)
    outs = {}
    for which in ("fp32", "int8"):
        code, _ = harness(tiny_models[which], "--runs", 1, "--inputs", tmp_path / "in.npz",
                          "--outputs", tmp_path / f"{which}.npz")
        assert code == 0
        with np.load(tmp_path / f"{which}.npz", allow_pickle=False) as archive:
            outs[which] = next(iter(archive.values()))
    assert outs["int8"].dtype == np.float32  # dequantized
    np.testing.assert_allclose(outs["int8"], outs["fp32"], atol=0.05)  # same model, INT8 close


def test_harness_rejects_pickles_and_bad_inputs(tiny_models, tmp_path):
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object))  # needs pickle to load
    code, out = harness(tiny_models["onnx"], "--inputs", tmp_path / "obj.npz")
    assert code == 2 and not out["ok"] and "cannot read inputs" in out["error"]
    np.savez(tmp_path / "shape.npz", x=np.zeros((2, 5), np.float32))
    code, out = harness(tiny_models["onnx"], "--inputs", tmp_path / "shape.npz")
    assert code == 2 and "shape [2, 5]" in out["error"]


def test_harness_reports_a_broken_model(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    code, out = harness(bad)
    assert code == 3 and out["ok"] is False and out["error"]


def test_local_device_contract(tiny_models, tmp_path):
    with LocalDevice() as dev:
        workdir = dev.workdir
        dev.push(str(tiny_models["onnx"]), f"{workdir}/m.onnx", timeout=10)
        result = dev.run([dev.python, str(HARNESS), f"{workdir}/m.onnx", "--runs", "3",
                          "--result", f"{workdir}/r.json"], timeout=60)
        dev.pull(f"{workdir}/r.json", str(tmp_path / "r.json"), timeout=10)
        assert json.loads(result.stdout) == json.loads((tmp_path / "r.json").read_text())
        facts = dev.facts(timeout=30)
        assert facts.cpu_count and "onnxruntime" in facts.runtimes
        with pytest.raises(DeviceInconclusive, match="timed out after 0.5s"):
            dev.run(["sleep", "30"], timeout=0.5)
        with pytest.raises(DeviceToolError, match="exited 1"):
            dev.run(["false"], timeout=5)
    assert not __import__("os").path.exists(workdir)
