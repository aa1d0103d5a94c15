"""SshDevice: a Linux board over the system OpenSSH client (`ssh`/`scp`, argv lists, no local shell).

Security and liveness options always come first on the command line, so they win over
~/.ssh/config and the inventory's `ssh_options` (first value wins in OpenSSH):
BatchMode=yes, ConnectTimeout (default 10 s), ServerAliveInterval 5 s x CountMax 3, and
StrictHostKeyChecking=yes (accept-new only when asked, for first contact). Remote commands are
quoted with shlex.join and, where the device has `timeout`, wrapped in it so a hung command dies
on the device too. ssh exit 255 (or an scp transport error) -> DeviceInconclusive; an unknown or
changed host key -> HostKeyRefused with the server's SHA256 fingerprint.
"""

from __future__ import annotations

import logging
import math
import re
import shlex

from edgekit.devices.base import (
    CommandResult,
    Device,
    ProcessTimeout,
    run_process,
    timeout_error,
)
from edgekit.errors import DeviceInconclusive, DeviceToolError, HostKeyRefused, UsageError, condense
from edgekit.fsutil import sha256_file

log = logging.getLogger("edgekit.devices.ssh")
DEFAULT_WORKDIR = "~/.cache/edgekit"
# inventory ssh_options flags we accept (each takes one value), and their scp spelling
SSH_OPTION_FLAGS = {"-F": "-F", "-i": "-i", "-p": "-P", "-J": "-J", "-o": "-o", "-l": None}
_PINNED = ("batchmode", "stricthostkeychecking", "connecttimeout")
_SAFE_REMOTE_PATH = re.compile(r"^[A-Za-z0-9._/+@%=,-]+$")
_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]+=*")
_SERVER_KEY = re.compile(r"Server host key: (\S+) (SHA256:[A-Za-z0-9+/]+=*)")
_TRANSPORT_ERRORS = (
    "connection refused", "connection timed out", "timed out", "connection closed",
    "connection reset", "lost connection", "broken pipe", "no route to host",
    "could not resolve", "network is unreachable", "closed by remote host",
    "permission denied (publickey", "too many authentication failures",
)


def parse_ssh_options(options: list[str]) -> list[tuple[str, str]]:
    """Validate an inventory `ssh_options` list into (flag, value) pairs; UsageError if not allowed."""
    if len(options) % 2:
        raise UsageError(f"ssh_options must be flag/value pairs, got {options!r}")
    pairs = list(zip(options[::2], options[1::2], strict=True))
    for flag, value in pairs:
        if flag not in SSH_OPTION_FLAGS:
            raise UsageError(f"ssh_options: {flag!r} not allowed (use {', '.join(SSH_OPTION_FLAGS)})")
        if flag == "-o" and value.split("=", 1)[0].strip().lower() in _PINNED:
            raise UsageError(f"ssh_options: {value!r} is set by edgekit (use accept_new_host_key)")
    return pairs


def check_destination(dest: str) -> str:
    """An ssh destination must not look like an option or contain whitespace."""
    if not dest or dest.startswith("-") or any(c.isspace() or ord(c) < 32 for c in dest):
        raise UsageError(f"bad ssh destination {dest!r}")
    return dest


class SshDevice(Device):
    """A device reached with `ssh DEST`; DEST is anything ssh accepts (aliases, user@host)."""

    kind = "ssh"

    def __init__(self, name: str, address: str, workdir: str | None = None,
                 python: str | None = "python3", ssh_options: list[str] | None = None,
                 accept_new_host_key: bool = False, connect_timeout: float = 10.0,
                 keepalive_s: int = 5):
        super().__init__(name, workdir or DEFAULT_WORKDIR)
        self.address = check_destination(address)
        self.python = python
        self.options = parse_ssh_options(list(ssh_options or []))
        self.accept_new_host_key = accept_new_host_key
        self.connect_timeout = connect_timeout
        self.keepalive_s = keepalive_s
        self._has_timeout = False

    # -- argv building ---------------------------------------------------------------------
    def _pinned(self) -> list[str]:
        strict = "accept-new" if self.accept_new_host_key else "yes"
        pinned = ["BatchMode=yes", f"StrictHostKeyChecking={strict}",
                  f"ConnectTimeout={max(1, math.ceil(self.connect_timeout))}",
                  f"ServerAliveInterval={self.keepalive_s}", "ServerAliveCountMax=3"]
        return [arg for opt in pinned for arg in ("-o", opt)]

    def _ssh_argv(self, remote: str, verbose: bool = False) -> list[str]:
        user = [arg for pair in self.options for arg in pair]
        return ["ssh", *self._pinned(), *user, *(["-v"] if verbose else []), "-T",
                self.address, remote]

    def _scp_argv(self, src: str, dst: str) -> list[str]:
        user = []
        for flag, value in self.options:
            scp_flag = SSH_OPTION_FLAGS[flag]
            user += [scp_flag, value] if scp_flag else ["-o", f"User={value}"]
        return ["scp", "-q", *self._pinned(), *user, src, dst]

    def _remote_path(self, path: str) -> str:
        if not _SAFE_REMOTE_PATH.match(path):
            raise UsageError(f"remote path {path!r} has characters scp may interpret", self.name)
        return f"{self.address}:{path}"

    # -- transport ---------------------------------------------------------------------------
    def _exec(self, argv: list[str], timeout: float, what: str, stdin_path: str | None = None):
        log.debug("%s: %s", self.name, shlex.join(argv))
        try:
            code, out, err, seconds = run_process(argv, timeout, stdin_path=stdin_path)
        except ProcessTimeout:
            log.debug("%s: %s timed out after %gs", self.name, what, timeout)
            raise timeout_error(self.name, what, timeout) from None
        except FileNotFoundError:
            raise DeviceToolError(f"{argv[0]} not found on this host: install openssh-client",
                                  self.name) from None
        log.debug("%s: %s exited %d after %.2fs", self.name, what, code, seconds)
        return code, out, err, seconds

    def _transport_failure(self, stderr: str) -> Exception:
        """HostKeyRefused or DeviceInconclusive for a failed ssh/scp, from its stderr."""
        if "host key verification failed" in stderr.lower():
            changed = "HAS CHANGED" in stderr or "has changed" in stderr
            match = _FINGERPRINT.search(stderr)
            fingerprint = match.group(0) if match else self._probe_fingerprint()
            state = "CHANGED" if changed else "unknown"
            hint = ("someone may be intercepting, or the device was reinstalled: check, then "
                    "fix known_hosts" if changed else
                    "check it, then add it to known_hosts or pass --accept-new-host-key")
            return HostKeyRefused(
                f"host key of {self.address} is {state} (server key {fingerprint}); {hint}",
                self.name)
        return DeviceInconclusive(f"ssh {self.address}: {condense(stderr, last=True)}", self.name)

    def _probe_fingerprint(self) -> str:
        """The server's key fingerprint from `ssh -v` (the connection stops at the key check)."""
        try:
            _, _, err, _ = run_process(self._ssh_argv("true", verbose=True),
                                       self.connect_timeout + 5)
        except (ProcessTimeout, OSError):
            return "fingerprint unavailable"
        match = _SERVER_KEY.search(err)
        return f"{match.group(1)} {match.group(2)}" if match else "fingerprint unavailable"

    def connect(self) -> None:
        """Resolve `~` in the workdir on the device, create it, and look for `timeout` there."""
        script = ('d="$1"; case "$d" in "~") d="$HOME";; "~/"*) d="$HOME/${d#"~/"}";; esac; '
                  'mkdir -p -- "$d" && cd -- "$d" && pwd -P && '
                  '{ command -v timeout >/dev/null 2>&1 && echo timeout=yes || echo timeout=no; }')
        result = self.run(["sh", "-c", script, "sh", self.workdir],
                          timeout=self.connect_timeout + 20)
        lines = result.stdout.strip().splitlines()
        if len(lines) < 2 or not lines[-2].startswith("/"):
            raise DeviceToolError(f"cannot create workdir {self.workdir}: {result.stdout!r}", self.name)
        self.workdir, self._has_timeout = lines[-2], lines[-1] == "timeout=yes"

    def run(self, argv: list[str], timeout: float, check: bool = True) -> CommandResult:
        remote = list(argv)
        if self._has_timeout:
            remote = ["timeout", "-k", "5", str(max(1, math.ceil(timeout))), *remote]
        local_timeout = timeout + self.connect_timeout + 10 if self._has_timeout else timeout
        code, out, err, seconds = self._exec(self._ssh_argv(shlex.join(remote)), local_timeout,
                                             f"{argv[0]} on {self.address}")
        if code == 255:
            raise self._transport_failure(err)
        if self._has_timeout and code in (124, 137):
            raise timeout_error(self.name, f"{argv[0]} on {self.address}", timeout)
        result = CommandResult(tuple(argv), code, out, err, seconds)
        if check and code != 0:
            raise DeviceToolError(f"{argv[0]} exited {code}: {condense(err or out, last=True)}", self.name)
        return result

    def _scp(self, src: str, dst: str, timeout: float, what: str) -> None:
        code, _, err, _ = self._exec(self._scp_argv(src, dst), timeout, what)
        if code == 0:
            return
        lowered = err.lower()
        if code == 255 or "host key verification failed" in lowered or any(
                marker in lowered for marker in _TRANSPORT_ERRORS):
            raise self._transport_failure(err)
        raise DeviceToolError(f"{what} failed: {condense(err, last=True)}", self.name)

    def push(self, local: str, remote: str, timeout: float) -> None:
        self._scp(local, self._remote_path(remote), timeout, f"push {local}")
        self.verify_sha256(remote, sha256_file(local), timeout)

    def pull(self, remote: str, local: str, timeout: float) -> None:
        self._scp(self._remote_path(remote), local, timeout, f"pull {remote}")
