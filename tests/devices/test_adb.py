"""AdbDevice through the real `adb` client and server against the loopback ADB device."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from edgekit.devices.adb import AdbDevice
from edgekit.errors import DeviceInconclusive, DeviceToolError, MissingDependencyError
from tests.devices.fake_adbd import adb_server, fake_device_factory  # noqa: F401  (fixtures)

WORKDIR = "/data/local/tmp/edgekit"


@pytest.fixture(params=["shell_v2", "marker"])
def device(request, fake_device_factory):  # noqa: F811
    """An AdbDevice on a fake phone, once with shell v2 and once without (exit-status marker)."""
    fake = fake_device_factory(shell_v2=request.param == "shell_v2")
    with AdbDevice("phone", fake.serial) as dev:
        dev.fake = fake
        yield dev


def test_features_decide_the_exit_status_path(device):
    assert device.shell_v2 is ("shell_v2" in device.fake.features)


def test_push_run_pull_roundtrip(device, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(
        "import sys, pathlib\n"
        "data = pathlib.Path(sys.argv[1]).read_bytes()\n"
        "pathlib.Path(sys.argv[2]).write_text(str(sum(data)))\n"
        "print('bytes', len(data))\n"
        "print('to stderr', file=sys.stderr)\n"
    )
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(200_000))  # several WRTE messages and sync DATA chunks
    device.push(str(script), f"{WORKDIR}/job.py", timeout=30)
    device.push(str(payload), f"{WORKDIR}/in/payload.bin", timeout=30)
    result = device.run(["python3", f"{WORKDIR}/job.py", f"{WORKDIR}/in/payload.bin", f"{WORKDIR}/out.txt"], timeout=30)
    assert result.returncode == 0
    assert "bytes 200000" in result.stdout
    assert "to stderr" in (result.stderr if device.shell_v2 else result.stdout)
    device.pull(f"{WORKDIR}/out.txt", str(tmp_path / "back" / "out.txt"), timeout=30)
    assert (tmp_path / "back" / "out.txt").read_text() == str(sum(payload.read_bytes()))
    # the device really holds the bytes we sent
    assert (device.fake.root / "edgekit" / "in" / "payload.bin").read_bytes() == payload.read_bytes()


@pytest.mark.parametrize("code", [0, 1, 3, 42])
def test_exit_status_is_carried(device, code):
    result = device.run(["sh", "-c", f"echo out; echo err >&2; exit {code}"], timeout=20, check=False)
    assert result.returncode == code
    assert result.stdout.startswith("out")


def test_failed_command_raises_tool_error_with_stderr(device):
    with pytest.raises(DeviceToolError) as info:
        device.run(["sh", "-c", "echo first >&2; echo 'last words' >&2; exit 7"], timeout=20)
    assert "exited with 7" in str(info.value)
    assert "last words" in str(info.value)
    assert device.serial in str(info.value)
    assert info.value.exit_code == 9


def test_output_without_trailing_newline_is_kept_exactly(device):
    result = device.run(["printf", "a\\nb"], timeout=20)
    assert result.stdout == "a\nb"


def test_shell_metacharacters_in_file_names_are_never_executed(device, tmp_path):
    name = "a b;$(touch pwned)'.tflite"
    local = tmp_path / name
    local.write_text("model bytes")
    remote = f"{WORKDIR}/{name}"
    device.push(str(local), remote, timeout=30)
    result = device.run(["cat", remote], timeout=20)
    assert result.stdout == "model bytes"
    device.run(["ls", "-l", remote, "`touch pwned`"], timeout=20, check=False)
    device.pull(remote, str(tmp_path / "back.tflite"), timeout=30)
    assert (tmp_path / "back.tflite").read_text() == "model bytes"
    created = [p for p in device.fake.root.rglob("*pwned*") if p.name == "pwned"]
    assert created == [] and not (tmp_path / "pwned").exists() and not os.path.exists("pwned")
    assert (device.fake.root / "edgekit" / name).is_file()


def test_facts_from_getprop(device):
    facts = device.facts(timeout=20)
    assert facts.model == "edgekit Loopback 7"
    assert facts.soc == "SM8550"
    assert facts.os == "Android" and facts.os_version == "14 (SDK 34)"
    assert facts.abi == "arm64-v8a"
    for name, celsius in facts.temperatures_c.items():  # host /sys: present or not, always sane
        assert -50 <= celsius <= 200, name


def test_missing_file_pull_is_a_tool_error(device, tmp_path):
    with pytest.raises(DeviceToolError, match="no-such-file"):
        device.pull(f"{WORKDIR}/no-such-file", str(tmp_path / "x"), timeout=20)
    assert not (tmp_path / "x").exists()


def test_corrupted_push_is_caught_by_sha256(fake_device_factory, tmp_path):  # noqa: F811
    fake = fake_device_factory(corrupt_push=True)
    local = tmp_path / "model.tflite"
    local.write_bytes(b"\x00TFL3" + os.urandom(1000))
    with AdbDevice("phone", fake.serial) as dev:
        with pytest.raises(DeviceToolError, match="corrupted copy") as info:
            dev.push(str(local), f"{WORKDIR}/model.tflite", timeout=30)
    assert "phone" in str(info.value)
    assert not (fake.root / "edgekit" / "model.tflite").exists()  # the bad copy is removed


@pytest.mark.parametrize("shell_v2", [True, False])
def test_device_disappearing_mid_run_is_inconclusive(fake_device_factory, shell_v2):  # noqa: F811
    fake = fake_device_factory(shell_v2=shell_v2)
    with AdbDevice("phone", fake.serial) as dev:
        threading.Timer(1.0, fake.disappear).start()
        started = time.monotonic()
        with pytest.raises(DeviceInconclusive) as info:
            dev.run(["sleep", "30"], timeout=15)
        assert time.monotonic() - started < 15
    assert fake.serial in str(info.value)


def test_hanging_command_times_out(fake_device_factory):  # noqa: F811
    fake = fake_device_factory()
    with AdbDevice("phone", fake.serial) as dev:
        started = time.monotonic()
        with pytest.raises(DeviceInconclusive, match="timed out after 1.5s"):
            dev.run(["sleep", "30"], timeout=1.5)
        assert time.monotonic() - started < 5
        assert dev.run(["echo", "still usable"], timeout=20).stdout.strip() == "still usable"


def test_unknown_serial_is_inconclusive(adb_server):  # noqa: F811
    with pytest.raises(DeviceInconclusive, match="adb 127.0.0.1:9: .*missing"):
        AdbDevice("ghost", "127.0.0.1:9").connect()


def test_unauthorized_device_is_inconclusive(fake_device_factory):  # noqa: F811
    fake = fake_device_factory(want_state="unauthorized", require_auth=True)
    with pytest.raises(DeviceInconclusive, match="unauthorized"):
        AdbDevice("phone", fake.serial).connect()


def test_missing_adb_client_is_a_dependency_error():
    with pytest.raises(MissingDependencyError, match="apt-get install adb"):
        AdbDevice("phone", "emulator-5554", adb="/nonexistent/adb").connect()


def test_edgekit_harness_runs_through_adb(device, tiny_models, tmp_path):
    """The on-device harness and a real TFLite model, pushed, run (python3 on the fake is the host's), pulled."""
    import edgekit.devices.harness as harness

    device.push(harness.__file__, f"{WORKDIR}/harness.py", timeout=30)
    device.push(str(tiny_models["int8"]), f"{WORKDIR}/m o'del.tflite", timeout=30)
    argv = ["python3", f"{WORKDIR}/harness.py", f"{WORKDIR}/m o'del.tflite", "--runs", "5", "--warmup", "1",
            "--threads", "1", "--result", f"{WORKDIR}/result.json"]
    device.run(argv, timeout=120)
    device.pull(f"{WORKDIR}/result.json", str(tmp_path / "result.json"), timeout=30)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result.get("ok", True) is not False, result
    assert len(result["latencies_ms"]) == 5 and all(ms > 0 for ms in result["latencies_ms"])
