"""Fixtures: a real loopback sshd, tiny real TFLite (FP32 + INT8) and ONNX models."""

from __future__ import annotations

import pytest

from tests.devices.models import build_onnx, build_tflite_pair
from scripts.boards.sshd import SSHD, SshServer


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """{'fp32': .tflite, 'int8': .tflite, 'onnx': .onnx}, built once per session."""
    out = tmp_path_factory.mktemp("models")
    fp32, int8 = build_tflite_pair(out)
    return {"fp32": fp32, "int8": int8, "onnx": build_onnx(out / "tiny_fp32.onnx")}


def _server(root):
    if SSHD is None:
        pytest.skip("OpenSSH server (sshd) not installed: run scripts/install_system_deps.sh")
    root.mkdir(parents=True, exist_ok=True)
    return SshServer(root).start()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A shared server whose host key the client already trusts."""
    server = _server(tmp_path_factory.mktemp("sshd"))
    server.trust_host_key()
    yield server
    server.stop()


@pytest.fixture
def fresh_sshd(tmp_path):
    """A per-test server (for tests that kill it or test host keys): host key NOT trusted yet."""
    server = _server(tmp_path / "sshd")
    yield server
    server.stop()
