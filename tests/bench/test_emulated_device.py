"""A board whose python says it is emulated (as scripts/arm64_board.sh's wrapper does): its
latency is reported but marked, never paired or gated; and when the device's ISA differs from
this host's, the same artifact's host and device outputs are compared."""

from __future__ import annotations

import sys

import numpy as np

from tests.bench.conftest import ssh_entry
from tests.bench.test_bench_cli import bench, load

SAMPLES = 4


def test_emulated_board_marked_not_gated_and_host_vs_device(build_dir, sshd, write_inventory,
                                                            tmp_path, monkeypatch):
    wrapper = tmp_path / "emulated-python"
    wrapper.write_text(f'#!/bin/sh\nEDGEKIT_EMULATED="test emulator" exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    entry = dict(ssh_entry(sshd, tmp_path / "remote"), python=str(wrapper))
    inventory = write_inventory({"emu": entry})
    np.savez(build_dir / "validation_inputs.npz",
             image=np.random.default_rng(5).standard_normal((SAMPLES, 16, 16, 3)).astype(np.float32))
    # this host pretends to be another ISA, so the board's x86 outputs count as another ISA's
    monkeypatch.setattr("edgekit.bench.runner.platform.machine", lambda: "riscv64")
    out = tmp_path / "report"
    code = bench(build_dir, "--device", "emu", "--inventory", inventory, "--accuracy",
                 "--runs", 3, "--warmup", 0, "--max-latency-ms", 1e-6, "--min-speedup", 1000,
                 "--out", out)
    assert code == 0  # gates that every real row would miss: emulated rows are not gated
    report = load(out)
    assert report["devices"][0]["facts"]["emulated"] == "test emulator"
    assert report["gates"] == [] and report["speedups"] == []
    assert report["warnings"] == ["--max-latency-ms 1e-06 was not checked: every measured row is emulated (emu)",
                                  "--min-speedup 1000 was not checked: every measured row is emulated (emu)"]
    rows = {r["artifact"]: r for r in report["rows"]}
    assert all(r["emulated"] == "test emulator" and r["latency"]["runs"] == 3 for r in rows.values())
    agreement = rows["model_int8.tflite"]["host_agreement"]
    assert agreement["reference"] == "model_int8.tflite on the host (riscv64)"
    (same,) = agreement["outputs"]  # the same x86 runtime on both sides: bit-identical
    assert agreement["samples"] == SAMPLES and same["max_abs_error"] == 0
    assert same["sqnr_db"] is None and same["top1_agreement"] == 1
    assert "model wants [1, 32]" in rows["model_fp32.onnx"]["accuracy"]["error"]
    md = (out / "bench.md").read_text()
    assert "harness (emulated)" in md and "not gated or compared" in md and "was not checked" in md
    assert "this host vs the device" in md
    assert "EMULATED" in (out / "bench.html").read_text()
