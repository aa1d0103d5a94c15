"""The device inventory (`devices.yaml`): validated entries, lookup, atomic updates, `open_device`.

Lookup (first found wins, no merging): `--inventory PATH`, else `./devices.yaml`, else
`$XDG_CONFIG_HOME/edgekit/devices.yaml` (XDG default `~/.config`). A device named `local` always
exists (this host) unless the file defines its own. File format:

    version: 1
    devices:
      orin: {kind: ssh, address: nvidia@orin.local, python: /usr/bin/python3, threads: 4}
      pixel7: {kind: adb, address: 1A2B3C4D, benchmark_model: ~/bin/benchmark_model}
      arm64: {kind: ssh, address: edgekit-arm64, emulated: true}   # latency never gated

`emulated` is also detected on the device (see devices.base.collect_facts).

Defaults: workdir `/data/local/tmp/edgekit` (adb), `~/.cache/edgekit` (ssh), a temp dir (local);
python `python3` over ssh, this interpreter locally, none on adb.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgekit.devices.base import Device
from edgekit.errors import MissingDependencyError, UsageError
from edgekit.fsutil import write_text_atomic
from edgekit.yamlconfig import load_mapping, validation_message

FILENAME = "devices.yaml"
ADB_WORKDIR = "/data/local/tmp/edgekit"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class DeviceEntry(BaseModel):
    """One device as the inventory names it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["adb", "ssh", "local"]
    address: Optional[str] = None
    workdir: Optional[str] = None
    python: Optional[str] = None
    benchmark_model: Optional[str] = None
    trtexec: Optional[str] = None
    cpu_affinity: Optional[str] = Field(None, description="hex CPU mask as taskset takes, e.g. f0")
    threads: Optional[int] = Field(None, ge=1, le=256)
    ssh_options: list[str] = Field(default_factory=list)
    accept_new_host_key: bool = False
    connect_timeout_s: float = Field(10.0, gt=0, le=300)
    emulated: bool = Field(False, description="an emulator: latency is reported, never gated")

    @field_validator("cpu_affinity")
    @classmethod
    def _mask(cls, value):
        if value is not None:
            digits = value[2:] if value.lower().startswith("0x") else value
            if not re.fullmatch(r"[0-9a-fA-F]+", digits) or int(digits, 16) == 0:
                raise ValueError(f"{value!r} is not a non-zero hex CPU mask (e.g. f0)")
            return digits.lower()
        return value

    @model_validator(mode="after")
    def _by_kind(self):
        if self.kind in ("adb", "ssh") and not self.address:
            raise ValueError(f"kind {self.kind} needs an address")
        if self.kind != "ssh" and (self.ssh_options or self.accept_new_host_key):
            raise ValueError("ssh_options / accept_new_host_key only apply to kind ssh")
        if self.kind == "ssh":
            from edgekit.devices.ssh import check_destination, parse_ssh_options

            try:
                check_destination(self.address)
                parse_ssh_options(self.ssh_options)
            except UsageError as err:
                raise ValueError(str(err)) from None
        return self


class Inventory(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    devices: dict[str, DeviceEntry] = Field(default_factory=dict)

    @field_validator("devices")
    @classmethod
    def _names(cls, devices):
        for name in devices:
            if not NAME_PATTERN.match(name):
                raise ValueError(f"device name {name!r}: use letters, digits, '.', '_', '-'")
        return devices


def user_inventory_path() -> Path:
    """`$XDG_CONFIG_HOME/edgekit/devices.yaml` (XDG_CONFIG_HOME defaults to ~/.config)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "edgekit" / FILENAME


def find_inventory(explicit: str | Path | None = None) -> Path | None:
    """The inventory file to use, or None when there is none (explicit paths must exist)."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise UsageError("inventory file not found", path)
        return path
    for path in (Path.cwd() / FILENAME, user_inventory_path()):
        if path.is_file():
            return path
    return None


def parse_inventory(text: str, path: str | Path) -> Inventory:
    """Validate YAML text; errors name the file and the key path (devices.orin.threads)."""
    data = load_mapping(text, str(path), UsageError) or {}
    try:
        return Inventory.model_validate(data)
    except ValidationError as err:
        raise UsageError(validation_message(err), path) from None


def load_inventory(explicit: str | Path | None = None) -> tuple[Inventory, Path | None]:
    """The inventory and the file it came from (empty inventory and None when there is no file)."""
    path = find_inventory(explicit)
    if path is None:
        return Inventory(), None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UsageError(f"cannot read ({err.strerror})", path) from None
    return parse_inventory(text, path), path


def resolve(inventory: Inventory, name: str, source: Path | None = None) -> DeviceEntry:
    """The entry named `name`; `local` is implicit; UsageError listing the known names otherwise."""
    if name in inventory.devices:
        return inventory.devices[name]
    if name == "local":
        return DeviceEntry(kind="local")
    known = ", ".join(sorted({*inventory.devices, "local"}))
    where = f" in {source}" if source else " (no devices.yaml found)"
    raise UsageError(f"unknown device {name!r}{where}; known: {known}")


def add_device(path: str | Path, name: str, entry: DeviceEntry, replace: bool = False) -> None:
    """Add (or with `replace`, overwrite) one entry and rewrite the file atomically."""
    path = Path(path)
    if not NAME_PATTERN.match(name):
        raise UsageError(f"device name {name!r}: use letters, digits, '.', '_', '-'")
    inventory = parse_inventory(path.read_text(encoding="utf-8"), path) if path.is_file() else Inventory()
    if name in inventory.devices and not replace:
        raise UsageError(f"device {name!r} already exists (use --replace)", path)
    inventory.devices[name] = entry
    data = {"version": 1, "devices": {key: value.model_dump(mode="json", exclude_defaults=True)
                                      for key, value in inventory.devices.items()}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))
    except OSError as err:
        raise UsageError(f"cannot write ({err.strerror})", path) from None


def open_device(name: str, entry: DeviceEntry, accept_new_host_key: bool = False) -> Device:
    """The Device subclass for an entry (not yet connected: use it as a context manager)."""
    device = _device(name, entry, accept_new_host_key)
    if entry.emulated:
        device.emulated = "marked emulated in devices.yaml"
    return device


def _device(name: str, entry: DeviceEntry, accept_new_host_key: bool) -> Device:
    if entry.kind == "local":
        from edgekit.devices.local import LocalDevice

        return LocalDevice(name, workdir=entry.workdir, python=entry.python)
    if entry.kind == "ssh":
        from edgekit.devices.ssh import SshDevice

        return SshDevice(name, entry.address, workdir=entry.workdir,
                         python=entry.python or "python3", ssh_options=entry.ssh_options,
                         accept_new_host_key=entry.accept_new_host_key or accept_new_host_key,
                         connect_timeout=entry.connect_timeout_s)
    try:
        module = importlib.import_module("edgekit.devices.adb")
        adb_device = module.AdbDevice
    except (ImportError, AttributeError):
        raise MissingDependencyError(
            f"device {name!r} is kind adb, but edgekit.devices.adb.AdbDevice is not available "
            "in this edgekit build") from None
    return adb_device.from_entry(name, entry) if hasattr(adb_device, "from_entry") else adb_device(
        name, entry.address, workdir=entry.workdir or ADB_WORKDIR)
