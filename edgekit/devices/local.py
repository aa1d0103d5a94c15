"""LocalDevice: the device contract on this host, so `edgekit bench build/ --device local` works anywhere.

Defaults: workdir a fresh temporary directory (removed on close), python = this interpreter.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from edgekit.devices.base import (
    CommandResult,
    Device,
    ProcessTimeout,
    run_process,
    timeout_error,
)
from edgekit.errors import DeviceInconclusive, DeviceToolError, condense
from edgekit.fsutil import sha256_file


class LocalDevice(Device):
    """Runs argv lists on the host, in `workdir` (a temporary directory unless given)."""

    kind = "local"

    def __init__(self, name: str = "local", workdir: str | None = None, python: str | None = None):
        super().__init__(name, workdir or "")
        self.python = python or sys.executable
        self._owned_tmp: str | None = None

    def connect(self) -> None:
        if not self.workdir:
            self._owned_tmp = tempfile.mkdtemp(prefix="edgekit-local-")
            self.workdir = self._owned_tmp
        else:
            self.workdir = os.path.abspath(os.path.expanduser(self.workdir))
            os.makedirs(self.workdir, exist_ok=True)

    def close(self) -> None:
        if self._owned_tmp:
            shutil.rmtree(self._owned_tmp, ignore_errors=True)
            self._owned_tmp = None
            self.workdir = ""

    def run(self, argv: list[str], timeout: float, check: bool = True) -> CommandResult:
        try:
            code, out, err, seconds = run_process(argv, timeout)
        except ProcessTimeout:
            raise timeout_error(self.name, f"{argv[0]}", timeout) from None
        except OSError as exc:
            raise DeviceToolError(f"cannot run {argv[0]}: {exc.strerror}", self.name) from None
        result = CommandResult(tuple(argv), code, out, err, seconds)
        if check and code != 0:
            raise DeviceToolError(
                f"{argv[0]} exited {code}: {condense(err or out, last=True)}", self.name)
        return result

    def push(self, local: str, remote: str, timeout: float) -> None:
        try:
            os.makedirs(os.path.dirname(remote) or ".", exist_ok=True)
            shutil.copyfile(local, remote)
        except OSError as exc:
            raise DeviceInconclusive(f"cannot copy {local} to {remote}: {exc.strerror}", self.name) from None
        self.verify_sha256(remote, sha256_file(local), timeout)

    def pull(self, remote: str, local: str, timeout: float) -> None:
        try:
            shutil.copyfile(remote, local)
        except OSError as exc:
            raise DeviceToolError(f"cannot pull {remote}: {exc.strerror}", self.name) from None
