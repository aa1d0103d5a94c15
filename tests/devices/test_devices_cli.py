"""`edgekit devices add` / `edgekit devices` through the real CLI entry point."""

from __future__ import annotations

import json

import pytest
import yaml

from edgekit.cli import main
from tests.bench.conftest import ssh_entry


def cli(*args) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(map(str, args)))
    return info.value.code


def test_add_then_check(sshd, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    entry = ssh_entry(sshd, tmp_path / "remote")
    assert cli("devices", "add", "board", "--ssh", entry["address"], "--python", entry["python"],
               "--workdir", entry["workdir"], "--ssh-option", f"-F {sshd.client_config}",
               "--threads", 2) == 0
    path = tmp_path / "xdg" / "edgekit" / "devices.yaml"
    assert yaml.safe_load(path.read_text())["devices"]["board"]["threads"] == 2
    assert cli("devices", "add", "board", "--ssh", "x") == 2
    assert cli("devices", "add", "bad", "--ssh", "h", "--adb", "s") == 2
    capsys.readouterr()
    assert cli("devices", "--json") == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["devices"]}
    assert rows["board"]["status"] == "ok" and rows["board"]["facts"]["cpu_count"] >= 1
    assert rows["local"]["status"] == "ok"


def test_check_reports_unreachable_exit_11(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "devices.yaml").write_text(yaml.safe_dump({"devices": {"gone": {
        "kind": "ssh", "address": "127.0.0.1", "connect_timeout_s": 2,
        "ssh_options": ["-p", "1", "-o", f"UserKnownHostsFile={tmp_path}/kh"]}}}))
    assert cli("devices", "list") == 11
    assert "gone" in capsys.readouterr().err
    assert cli("devices", "list", "--no-check") == 0


def test_check_ranks_failures_like_bench_a_tool_failure_before_an_unreachable_device(tmp_path, monkeypatch,
                                                                                      capsys):
    from edgekit.bench.analysis import overall
    from edgekit.bench.schema import Row

    monkeypatch.chdir(tmp_path)
    (tmp_path / "devices.yaml").write_text(yaml.safe_dump({"devices": {
        "gone": {"kind": "ssh", "address": "127.0.0.1", "connect_timeout_s": 2,
                 "ssh_options": ["-p", "1", "-o", f"UserKnownHostsFile={tmp_path}/kh"]},
        "broken": {"kind": "local"}}}))
    from edgekit.devices.local import LocalDevice
    from edgekit.errors import DeviceToolError

    def failing_probe(self, timeout):
        if self.name == "broken":
            raise DeviceToolError("the facts probe exited 1", self.name)
        return original(self, timeout)

    original = LocalDevice.facts
    monkeypatch.setattr(LocalDevice, "facts", failing_probe)
    code = cli("devices", "list", "--json")
    rows = {row["name"]: row["status"] for row in json.loads(capsys.readouterr().out)["devices"]}
    assert rows == {"gone": "inconclusive", "broken": "tool_failed", "local": "ok"}
    bench_rows = [Row.model_construct(status=status) for status in ("inconclusive", "tool_failed")]
    assert code == 9 == overall(bench_rows)[1]  # one precedence (edgekit.errors.DEVICE_OUTCOMES)
