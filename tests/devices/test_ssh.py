"""SshDevice against a real OpenSSH server on 127.0.0.1, with the real ssh/scp clients."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgekit.devices.ssh import SshDevice, parse_ssh_options
from edgekit.errors import DeviceInconclusive, DeviceToolError, HostKeyRefused, UsageError
from edgekit.fsutil import sha256_file
from scripts.boards.sshd import free_port

HARNESS = Path(__file__).resolve().parents[2] / "edgekit" / "devices" / "harness.py"


def device(server, workdir, **kwargs) -> SshDevice:
    kwargs.setdefault("python", sys.executable)
    return SshDevice("board", server.alias, workdir=str(workdir),
                     ssh_options=["-F", str(server.client_config)], **kwargs)


@pytest.mark.parametrize("which", ["fp32", "int8", "onnx"])
def test_push_run_harness_pull(sshd, tiny_models, tmp_path, which):
    model = tiny_models[which]
    with device(sshd, tmp_path / "remote") as dev:
        assert dev.workdir == str((tmp_path / "remote").resolve())
        dev.push(str(HARNESS), f"{dev.workdir}/harness.py", timeout=30)
        dev.push(str(model), f"{dev.workdir}/{model.name}", timeout=30)
        result = dev.run([dev.python, f"{dev.workdir}/harness.py", f"{dev.workdir}/{model.name}",
                          "--runs", "7", "--warmup", "2", "--threads", "1",
                          "--outputs", f"{dev.workdir}/out.npz",
                          "--result", f"{dev.workdir}/result.json"], timeout=60)
        dev.pull(f"{dev.workdir}/result.json", str(tmp_path / "result.json"), timeout=30)
        dev.pull(f"{dev.workdir}/out.npz", str(tmp_path / "out.npz"), timeout=30)
    pulled = json.loads((tmp_path / "result.json").read_text())
    assert pulled == json.loads(result.stdout)
    assert pulled["ok"] and len(pulled["latencies_ms"]) == 7
    assert all(ms > 0 for ms in pulled["latencies_ms"]) and pulled["cold_start_ms"] > 0
    assert pulled["runtime"]["name"] == ("onnxruntime" if which == "onnx" else "ai_edge_litert")
    with np.load(tmp_path / "out.npz", allow_pickle=False) as outputs:
        assert [a.dtype for a in outputs.values()] == [np.float32]


def test_facts_over_ssh(sshd, tmp_path):
    with device(sshd, tmp_path / "remote") as dev:
        facts = dev.facts(timeout=30)
    assert facts.os and facts.kernel and facts.cpu_count >= 1
    assert "numpy" in facts.runtimes and "onnxruntime" in facts.runtimes


def test_tilde_workdir_is_resolved_on_the_device(sshd, tmp_path, monkeypatch):
    with device(sshd, "~/.cache/edgekit-test-tilde") as dev:
        assert dev.workdir.startswith("/") and dev.workdir.endswith("/.cache/edgekit-test-tilde")
        dev.run(["rmdir", dev.workdir], timeout=10)


def test_metacharacters_are_data_not_code(sshd, tmp_path):
    marker = tmp_path / "pwned"
    with device(sshd, tmp_path / "remote") as dev:
        out = dev.run(["echo", f"$(touch {marker}); `id` | ;"], timeout=10).stdout
    assert out.strip() == f"$(touch {marker}); `id` | ;" and not marker.exists()


def test_sha256_mismatch_is_refused(sshd, tmp_path):
    local = tmp_path / "a.bin"
    local.write_bytes(b"x" * 1000)
    with device(sshd, tmp_path / "remote") as dev:
        dev.push(str(local), f"{dev.workdir}/a.bin", timeout=30)
        (Path(dev.workdir) / "a.bin").write_bytes(b"y" * 1000)  # corrupt the device copy
        with pytest.raises(DeviceToolError, match="sha256 on the device"):
            dev.verify_sha256(f"{dev.workdir}/a.bin", sha256_file(local), timeout=10)


def test_failing_command_is_a_tool_error(sshd, tmp_path):
    with device(sshd, tmp_path / "remote") as dev:
        with pytest.raises(DeviceToolError, match="exited 3"):
            dev.run(["sh", "-c", "echo broken >&2; exit 3"], timeout=10)
        assert dev.run(["false"], timeout=10, check=False).returncode == 1


def test_unknown_host_key_refused_with_fingerprint(fresh_sshd, tmp_path):
    with pytest.raises(HostKeyRefused, match="unknown") as info:
        with device(fresh_sshd, tmp_path / "remote"):
            pass
    assert fresh_sshd.host_fingerprint in str(info.value)
    assert not fresh_sshd.known_hosts.exists()


def test_accept_new_host_key_then_changed_key_refused(fresh_sshd, tmp_path):
    with device(fresh_sshd, tmp_path / "remote", accept_new_host_key=True) as dev:
        assert dev.run(["true"], timeout=10).returncode == 0
    assert fresh_sshd.known_hosts.read_text().strip()
    # the board is "reinstalled": same address, new host key
    fresh_sshd.stop()
    fresh_sshd.host_key.unlink()
    Path(f"{fresh_sshd.host_key}.pub").unlink()
    from scripts.boards.sshd import keygen

    keygen(fresh_sshd.host_key)
    fresh_sshd.start()
    with pytest.raises(HostKeyRefused, match="CHANGED") as info:
        with device(fresh_sshd, tmp_path / "remote", accept_new_host_key=True):
            pass
    assert fresh_sshd.host_fingerprint in str(info.value)


def test_unreachable_is_inconclusive_and_fast(tmp_path):
    dev = SshDevice("gone", "127.0.0.1", workdir=str(tmp_path),
                    ssh_options=["-p", str(free_port()), "-o", f"UserKnownHostsFile={tmp_path}/kh"],
                    connect_timeout=3)
    start = time.monotonic()
    with pytest.raises(DeviceInconclusive, match="Connection refused"):
        with dev:
            pass
    assert time.monotonic() - start < 5


def test_hanging_command_hits_its_timeout(sshd, tmp_path):
    with device(sshd, tmp_path / "remote") as dev:
        start = time.monotonic()
        with pytest.raises(DeviceInconclusive, match="timed out after 2s"):
            dev.run(["sleep", "60"], timeout=2)
        assert time.monotonic() - start < 8


def test_connection_dropped_mid_run(fresh_sshd, tmp_path):
    fresh_sshd.trust_host_key()
    with device(fresh_sshd, tmp_path / "remote") as dev:
        killer = threading.Thread(target=lambda: fresh_sshd.wait_for_command("sleep")
                                  and fresh_sshd.drop_connections())
        killer.start()
        start = time.monotonic()
        with pytest.raises(DeviceInconclusive, match="ssh edgekit-test"):
            dev.run(["sleep", "30"], timeout=60)
        killer.join()
        assert time.monotonic() - start < 10


@pytest.mark.parametrize("options, message", [
    (["-o"], "pairs"),
    (["-X", "y"], "not allowed"),
    (["-o", "StrictHostKeyChecking=no"], "set by edgekit"),
])
def test_bad_ssh_options_rejected(options, message):
    with pytest.raises(UsageError, match=message):
        parse_ssh_options(options)


def test_destination_cannot_be_an_option():
    with pytest.raises(UsageError, match="bad ssh destination"):
        SshDevice("x", "-oProxyCommand=touch /tmp/x")
