"""The emulated aarch64 board (scripts/arm64_board.sh) end to end: start it, bench the digits
INT8 TFLite and ONNX artifacts on ARM's kernels, read back on-device accuracy, the host-vs-board
agreement and the device facts. Marked `arm64` (scripts/nightly.sh): the first run builds the
board (Debian arm64 packages, aarch64 wheels, qemu: about a minute, ~250 MiB), later runs reuse
it from ~/.cache/edgekit/arm64-board."""

from __future__ import annotations

import json

import pytest
import yaml

from edgekit.cli import main
from scripts.boards import arm64 as arm64_board
from tests.conftest import DIGITS_DATA

pytestmark = pytest.mark.arm64


@pytest.fixture(scope="module")
def board():
    """The board's state (started here unless it was running; then left running)."""
    module = arm64_board
    was_running = module.running() is not None
    state = module.start()
    yield state
    if not was_running:
        assert module.stop() and module.running() is None


@pytest.fixture(scope="module")
def digits_build(digits_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("arm64") / "build"
    with pytest.raises(SystemExit) as exit_info:
        main(["compress", str(digits_models[1]), "--int8", "-c", str(DIGITS_DATA), "--color",
              "grayscale", "-t", "tflite", "-t", "onnx", "--out", str(out), "--runs", "3", "--quiet"])
    assert exit_info.value.code == 0
    return out


def test_digits_int8_on_the_emulated_arm64_board(board, digits_build, tmp_path, capsys):
    inventory = tmp_path / "devices.yaml"
    inventory.write_text(yaml.safe_dump({"version": 1, "devices": {"arm64": {
        "kind": "ssh", "address": "edgekit-arm64", "python": board["python"],
        "workdir": board["workdir"], "ssh_options": ["-F", board["ssh_config"]]}}}))
    out = tmp_path / "report"
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", str(digits_build), "--device", "arm64", "--inventory", str(inventory),
              "--accuracy", "--runs", "3", "--warmup", "1", "--out", str(out)])
    assert exit_info.value.code == 0, capsys.readouterr().err
    report = json.loads((out / "bench.json").read_text())
    (device,) = report["devices"]
    facts = device["facts"]  # from the board's (aarch64) python
    assert facts["abi"] == "aarch64" and facts["emulated"].startswith("qemu-user")
    assert {"asimd", "asimddp"} <= set(facts["cpu_features"])
    assert {"ai_edge_litert", "onnxruntime", "numpy"} <= set(facts["runtimes"])
    rows = {r["artifact"]: r for r in report["rows"]}
    assert report["speedups"] == []  # emulated latency is never paired
    for name in ("model_int8.tflite", "model_int8.onnx"):
        row = rows[name]
        assert row["status"] == "ok" and row["emulated"] == facts["emulated"]
        (accuracy,) = row["accuracy"]["outputs"]  # vs the host float reference
        assert row["accuracy"]["samples"] >= 10 and accuracy["top1_agreement"] >= 0.9
        assert accuracy["sqnr_db"] > 15
        agreement = row["host_agreement"]  # the same INT8 artifact, x86 host vs aarch64 board
        assert agreement["reference"].startswith(f"{name} on the host (")
        assert agreement["outputs"][0]["top1_agreement"] >= 0.9
    md = (out / "bench.md").read_text()
    assert "| arm64 | model_int8.onnx |" in md and "this host vs the device" in md
