"""The device contract: a context manager that can push, run, pull and describe itself.

Subclasses implement the `*_impl` hooks; the public methods add timeouts, checks and errors.
Transport failures raise DeviceInconclusive (exit 11); a tool that ran and failed raises
DeviceToolError (exit 9); a refused host key raises HostKeyRefused (exit 12).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class CommandResult:
    """What one remote command did."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


@dataclass
class DeviceFacts:
    """Facts collected from a device; unknown facts stay None."""

    model: Optional[str] = None
    soc: Optional[str] = None
    cpu: Optional[str] = None
    os: Optional[str] = None
    os_version: Optional[str] = None
    abi: Optional[str] = None
    governor: Optional[str] = None
    temperatures_c: dict[str, float] = field(default_factory=dict)
    runtimes: dict[str, str] = field(default_factory=dict)


class Device(abc.ABC):
    """One target machine. Use as `with device: ...`; every call takes a timeout in seconds."""

    kind: str = "abstract"

    def __init__(self, name: str, workdir: str):
        self.name = name
        self.workdir = workdir

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def connect(self) -> None:
        """Open the transport (default: nothing to open)."""

    def close(self) -> None:
        """Release the transport (default: nothing to release)."""

    @abc.abstractmethod
    def run(self, argv: list[str], timeout: float, check: bool = True) -> CommandResult:
        """Run argv on the device (quoted, never through a local shell)."""

    @abc.abstractmethod
    def push(self, local: str, remote: str, timeout: float) -> None:
        """Copy a local file to the device and verify its sha256 there."""

    @abc.abstractmethod
    def pull(self, remote: str, local: str, timeout: float) -> None:
        """Copy a device file to the host."""

    @abc.abstractmethod
    def facts(self, timeout: float) -> DeviceFacts:
        """Model, SoC, OS, governor, temperatures and runtimes of the device."""
