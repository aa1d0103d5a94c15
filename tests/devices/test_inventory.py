"""devices.yaml: validation errors with file + key path, lookup order, atomic add, open_device."""

from __future__ import annotations

import pytest
import yaml

from edgekit.devices.inventory import (
    ADB_WORKDIR,
    DeviceEntry,
    add_device,
    find_inventory,
    load_inventory,
    open_device,
    resolve,
)
from edgekit.devices.local import LocalDevice
from edgekit.devices.ssh import SshDevice
from edgekit.errors import MissingDependencyError, UsageError


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("text, message", [
    ("devices:\n  orin: {kind: ssh, adress: x}\n", "unknown key 'devices.orin.adress'"),
    ("devices:\n  orin: {kind: ssh}\n", "devices.orin: kind ssh needs an address"),
    ("devices:\n  p: {kind: adb, address: S, threads: 0}\n", "devices.p.threads: Input should be greater"),
    ("devices:\n  p: {kind: ssh, address: h, cpu_affinity: zz}\n", "not a non-zero hex CPU mask"),
    ("devices:\n  p: {kind: ssh, address: h, ssh_options: [-o, BatchMode=no]}\n", "set by edgekit"),
    ("devices:\n  p: {kind: telnet, address: h}\n", "devices.p.kind"),
    ("devices:\n  'bad name': {kind: local}\n", "device name 'bad name'"),
    ("version: 2\n", "version"),
    ("devices: [\n", "not valid YAML at line"),
    ("- a\n", "must be a mapping"),
])
def test_invalid_inventory_names_file_and_key(tmp_path, text, message):
    path = tmp_path / "devices.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as info:
        load_inventory()
    assert str(path) in str(info.value)


def test_lookup_project_then_user_then_none(tmp_path):
    assert find_inventory() is None
    user = tmp_path / "xdg" / "edgekit" / "devices.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("devices: {u: {kind: local}}\n")
    assert find_inventory() == user
    project = tmp_path / "devices.yaml"
    project.write_text("devices: {p: {kind: local}}\n")
    inv, source = load_inventory()
    assert source == project and list(inv.devices) == ["p"]
    with pytest.raises(UsageError, match="inventory file not found"):
        find_inventory(tmp_path / "missing.yaml")


def test_local_is_implicit_and_unknown_names_listed(tmp_path):
    inv, source = load_inventory()
    assert resolve(inv, "local").kind == "local"
    with pytest.raises(UsageError, match="unknown device 'orin'.*known: local"):
        resolve(inv, "orin", source)


def test_add_writes_atomically_and_refuses_duplicates(tmp_path):
    path = tmp_path / "inv" / "devices.yaml"
    add_device(path, "orin", DeviceEntry(kind="ssh", address="nvidia@orin", threads=4))
    add_device(path, "pi", DeviceEntry(kind="ssh", address="pi", ssh_options=["-p", "2222"]))
    data = yaml.safe_load(path.read_text())
    assert data == {"version": 1, "devices": {
        "orin": {"kind": "ssh", "address": "nvidia@orin", "threads": 4},
        "pi": {"kind": "ssh", "address": "pi", "ssh_options": ["-p", "2222"]}}}
    with pytest.raises(UsageError, match="already exists"):
        add_device(path, "pi", DeviceEntry(kind="local"))
    add_device(path, "pi", DeviceEntry(kind="local"), replace=True)
    assert load_inventory(path)[0].devices["pi"].kind == "local"
    assert [p.name for p in path.parent.iterdir()] == ["devices.yaml"]  # no temp files left


def test_open_device_factory(tmp_path):
    ssh = open_device("orin", DeviceEntry(kind="ssh", address="orin", ssh_options=["-p", "22"]))
    assert isinstance(ssh, SshDevice) and ssh.workdir == "~/.cache/edgekit" and ssh.python == "python3"
    local = open_device("local", DeviceEntry(kind="local"))
    assert isinstance(local, LocalDevice)


def test_open_adb_device_or_clear_error():
    entry = DeviceEntry(kind="adb", address="SERIAL1")
    try:
        import edgekit.devices.adb  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="AdbDevice is not available"):
            open_device("pixel", entry)
    else:
        device = open_device("pixel", entry)
        assert device.kind == "adb" and device.workdir == ADB_WORKDIR
