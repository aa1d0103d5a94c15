"""Bench fixtures: the device fixtures (real sshd, tiny real models) and a compress-style build dir."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import yaml

from edgekit.fsutil import sha256_file
from tests.devices.conftest import fresh_sshd, sshd, tiny_models  # noqa: F401 (fixtures)


@pytest.fixture
def build_dir(tmp_path, tiny_models):  # noqa: F811
    """A compress output directory: FP32 + INT8 TFLite, FP32 ONNX, and manifest.json."""
    build = tmp_path / "build"
    build.mkdir()
    artifacts = []
    for key, name, fmt, precision in [("fp32", "model_fp32.tflite", "tflite", "fp32"),
                                      ("int8", "model_int8.tflite", "tflite", "int8"),
                                      ("onnx", "model_fp32.onnx", "onnx", "fp32")]:
        shutil.copyfile(tiny_models[key], build / name)
        artifacts.append({"name": name, "format": fmt, "precision": precision,
                          "sha256": sha256_file(build / name), "bytes": (build / name).stat().st_size})
    (build / "manifest.json").write_text(json.dumps(
        {"schema_version": 1, "edgekit_version": "0.1.0", "artifacts": artifacts}))
    return build


def ssh_entry(server, workdir) -> dict:
    """An inventory entry for a loopback sshd, reached through its alias and client config."""
    return {"kind": "ssh", "address": server.alias, "python": sys.executable, "workdir": str(workdir),
            "ssh_options": ["-F", str(server.client_config)], "connect_timeout_s": 5}


@pytest.fixture
def write_inventory(tmp_path):
    def write(devices: dict):
        path = tmp_path / "devices.yaml"
        path.write_text(yaml.safe_dump({"version": 1, "devices": devices}))
        return path
    return write
