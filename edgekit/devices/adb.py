"""Android devices through the system `adb` client (Debian package `adb`).

Every step runs `adb -s SERIAL ...` as an argument list with a timeout (the client's process group
is killed on expiry). Remote command lines are quoted with `shlex.join`.

Exit status: with the shell v2 protocol (`shell_v2` in `adb features`) the status travels in the
stream's exit packet. The adb client (29.x) still exits 0 when the stream dies without one, so
after every v2 command the device state is checked as well. Without shell v2 a per-call marker
(`; printf '\\n__EDGEKIT_RC_<nonce>=%s\\n' $?`) is appended and parsed; stdout and stderr then arrive
merged, and a missing marker means the connection broke.

Pushed files are verified with `sha256sum` (toybox) on the device; a corrupted copy is removed.
Errors: device missing, offline or unauthorized, a lost connection or a timeout raise
DeviceInconclusive (exit 11) naming the serial; a command that ran and failed raises
DeviceToolError (exit 9) with its last output lines.
"""

from __future__ import annotations

import os
import posixpath
import re
import secrets
import shlex
import tempfile
from pathlib import Path
from typing import Optional

from edgekit.devices.base import (
    RUNTIMES_PY,
    CommandResult,
    Device,
    DeviceFacts,
    ProcessTimeout,
    parse_temperatures,
    run_process,
    timeout_error,
)
from edgekit.errors import DeviceInconclusive, DeviceToolError, MissingDependencyError
from edgekit.fsutil import sha256_file

DEFAULT_WORKDIR = "/data/local/tmp/edgekit"
STATE_TIMEOUT_S = 10.0
TAIL_LINES = 4

_STATE_HINTS = {
    "unauthorized": "accept the USB debugging prompt on the phone",
    "missing": "not connected: check `adb devices` (`adb connect HOST:PORT` for network devices)",
    "offline": "reconnect it",
}

# One round trip for the facts. $1: python on the device (may be empty), $2: RUNTIMES_PY.
_FACTS_SCRIPT = r"""
for p in ro.product.manufacturer ro.product.model ro.soc.model ro.board.platform ro.hardware \
         ro.build.version.release ro.build.version.sdk ro.product.cpu.abi; do
  printf 'prop:%s=%s\n' "$p" "$(getprop "$p" 2>/dev/null)"
done
printf 'governor=%s\n' "$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null)"
printf 'cpu=%s\n' "$(grep -m1 -E '^(Hardware|model name)' /proc/cpuinfo 2>/dev/null | sed 's/^[^:]*: *//')"
printf 'nproc=%s\n' "$(nproc 2>/dev/null)"
printf 'kernel=%s\n' "$(uname -sr 2>/dev/null)"
for z in /sys/class/thermal/thermal_zone*; do
  t=$(cat "$z/temp" 2>/dev/null) && printf 'thermal:%s=%s\n' "$(cat "$z/type" 2>/dev/null || basename "$z")" "$t"
done
if [ -n "$1" ]; then "$1" -c "$2" 2>/dev/null | sed 's/^/runtime:/'; fi
exit 0
"""


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-400:] if kept else "(no output)"


class AdbDevice(Device):
    """An Android phone, emulator or `host:port` network device known to the adb server.

    Defaults: workdir /data/local/tmp/edgekit, the `adb` on PATH, no python on the device.
    Other inventory settings (benchmark_model path, threads, cpu_affinity) stay in `settings`.
    """

    kind = "adb"

    def __init__(
        self,
        name: str,
        serial: str,
        workdir: str = DEFAULT_WORKDIR,
        adb: str = "adb",
        python: Optional[str] = None,
        **settings,
    ):
        super().__init__(name, workdir or DEFAULT_WORKDIR)
        if not serial or serial.startswith("-") or any(ch.isspace() for ch in serial):
            raise DeviceInconclusive(f"invalid adb serial {serial!r}", name)
        self.serial = serial
        self.adb = adb
        self.python = python
        self.settings = settings
        self.shell_v2: Optional[bool] = None
        self._made_dirs: set[str] = set()

    @classmethod
    def from_entry(cls, name: str, entry) -> "AdbDevice":
        """Build from an inventory entry (edgekit.devices.inventory.DeviceEntry)."""
        return cls(
            name,
            entry.address,
            workdir=entry.workdir or DEFAULT_WORKDIR,
            python=entry.python,
            benchmark_model=entry.benchmark_model,
            threads=entry.threads,
            cpu_affinity=entry.cpu_affinity,
        )

    # -- the adb client ---------------------------------------------------------------------------
    def _adb(self, args: list[str], timeout: float, what: str) -> tuple[int, str, str, float]:
        """(exit code, stdout, stderr, seconds) of `adb -s SERIAL args`."""
        try:
            return run_process([self.adb, "-s", self.serial, *args], timeout)
        except FileNotFoundError:
            raise MissingDependencyError(
                f"the adb client {self.adb!r} is not installed (Debian/Ubuntu: apt-get install adb)", self.name
            ) from None
        except ProcessTimeout:
            raise timeout_error(self.name, f"adb {self.serial}: {what}", timeout) from None

    def state(self, timeout: float = STATE_TIMEOUT_S) -> str:
        """The adb server's view: 'device', 'offline', 'unauthorized', 'missing', ..."""
        code, out, err, _ = self._adb(["get-state"], timeout, "get-state")
        if code == 0 and out.strip():
            return out.strip()
        err = err.strip().lower()
        for word in ("unauthorized", "offline", "connecting", "authorizing", "no permissions"):
            if word in err:
                return word
        if "not found" in err or "no devices" in err:
            return "missing"
        return err.removeprefix("error: ") or f"unknown (adb exit {code})"

    def _require_online(self, context: str) -> None:
        state = self.state()
        if state != "device":
            hint = _STATE_HINTS.get(state, "not usable")
            raise DeviceInconclusive(f"adb {self.serial}: {context}: device is {state} ({hint})", self.name)

    # -- the Device contract ----------------------------------------------------------------------
    def connect(self) -> None:
        """Check the device is online, read its features, create the workdir."""
        self._require_online("cannot connect")
        code, out, _, _ = self._adb(["features"], STATE_TIMEOUT_S, "features")
        self.shell_v2 = code == 0 and "shell_v2" in out.split()
        self._mkdir(self.workdir, STATE_TIMEOUT_S)

    def run(self, argv: list[str], timeout: float, check: bool = True) -> CommandResult:
        """Run argv on the device; exit status from shell v2 or from the marker."""
        if not argv:
            raise ValueError("empty command")
        if self.shell_v2 is None:
            self.connect()
        command = shlex.join(argv)
        what = f"`{_short(command)}`"
        if self.shell_v2:
            code, out, err, seconds = self._adb(["shell", "-T", command], timeout, what)
            self._require_online(f"{what} lost its connection")
        else:
            marker = f"__EDGEKIT_RC_{secrets.token_hex(4)}="
            wrapped = f"{command}; printf '\\n{marker}%s\\n' $?"
            code, raw, err, seconds = self._adb(["shell", wrapped], timeout, what)
            out, code = self._split_marker(raw, marker, what)
        result = CommandResult(tuple(argv), code, out, err, seconds)
        if check and code != 0:
            detail = _tail(err) if err.strip() else _tail(out)
            raise DeviceToolError(f"adb {self.serial}: {what} exited with {code}: {detail}", self.name)
        return result

    def _split_marker(self, raw: str, marker: str, what: str) -> tuple[str, int]:
        """Output and exit status of a marker-wrapped command."""
        text = raw.replace("\r\n", "\n")
        at = text.rfind("\n" + marker)
        match = re.fullmatch(r"(\d+)\n?", text[at + 1 + len(marker) :]) if at >= 0 else None
        if match is None:
            self._require_online(f"{what} lost its connection")
            raise DeviceInconclusive(f"adb {self.serial}: {what} was cut off (no exit status came back)", self.name)
        return text[:at], int(match.group(1))

    def _mkdir(self, path: str, timeout: float) -> None:
        if path not in self._made_dirs:
            self.run(["mkdir", "-p", path], timeout)
            self._made_dirs.add(path)

    def push(self, local: str, remote: str, timeout: float) -> None:
        """`adb push` (the sync protocol: no shell sees the names), then sha256 on the device."""
        if self.shell_v2 is None:
            self.connect()
        expected = sha256_file(local)
        self._mkdir(posixpath.dirname(remote) or "/", timeout)
        code, _, err, _ = self._adb(["push", str(local), remote], timeout, f"push {local}")
        if code != 0:
            self._require_online(f"push of {local} failed")
            raise DeviceToolError(f"adb {self.serial}: push {local} -> {remote} failed: {_tail(err)}", self.name)
        try:
            self.verify_sha256(remote, expected, timeout)
        except DeviceToolError:
            self.run(["rm", "-f", remote], STATE_TIMEOUT_S, check=False)
            raise

    def pull(self, remote: str, local: str, timeout: float) -> None:
        """`adb pull` into a temporary file beside `local`, renamed into place on success."""
        if self.shell_v2 is None:
            self.connect()
        target = Path(local)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        try:
            code, _, err, _ = self._adb(["pull", remote, tmp], timeout, f"pull {remote}")
            if code != 0:
                self._require_online(f"pull of {remote} failed")
                raise DeviceToolError(f"adb {self.serial}: pull {remote} failed: {_tail(err)}", self.name)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def facts(self, timeout: float) -> DeviceFacts:
        """getprop model/SoC/Android/ABI, governor, thermal zones, runtimes (missing -> None)."""
        argv = ["sh", "-c", _FACTS_SCRIPT, "sh", self.python or "", RUNTIMES_PY]
        return parse_android_facts(self.run(argv, timeout, check=False).stdout)


def parse_android_facts(text: str) -> DeviceFacts:
    """Facts from the `key=value` lines of _FACTS_SCRIPT; empty or absent values stay None."""
    props: dict[str, str] = {}
    plain: dict[str, str] = {}
    thermal: list[str] = []
    runtimes: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep or not value.strip():
            continue
        if key.startswith("prop:"):
            props[key[5:]] = value.strip()
        elif key.startswith("thermal:"):
            thermal.append(f"{key[8:]}={value.strip()}")
        elif key.startswith("runtime:"):
            runtimes[key[8:]] = value.strip()
        else:
            plain.setdefault(key, value.strip())
    release, sdk = props.get("ro.build.version.release"), props.get("ro.build.version.sdk")
    maker, model = props.get("ro.product.manufacturer"), props.get("ro.product.model")
    nproc = plain.get("nproc", "")
    return DeviceFacts(
        model=" ".join(part for part in (maker, model) if part) or None,
        soc=props.get("ro.soc.model") or props.get("ro.board.platform") or props.get("ro.hardware"),
        cpu=plain.get("cpu"),
        os="Android",
        os_version=f"{release} (SDK {sdk})" if release and sdk else (release or sdk),
        abi=props.get("ro.product.cpu.abi"),
        governor=plain.get("governor"),
        temperatures_c=parse_temperatures(thermal),
        runtimes=runtimes,
        kernel=plain.get("kernel"),
        cpu_count=int(nproc) if nproc.isdigit() else None,
    )


def _short(command: str, limit: int = 120) -> str:
    return command if len(command) <= limit else command[: limit - 3] + "..."
