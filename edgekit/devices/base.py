"""The device contract: a context manager that can push, run, pull and describe itself.

Subclasses implement `run`, `push`, `pull`; `facts` and `verify_sha256` have POSIX-shell defaults
built on `run`. Transport failures raise DeviceInconclusive (exit 11); a tool that ran and failed
raises DeviceToolError (exit 9); a refused host key raises HostKeyRefused (exit 12).
`run_process` is the one place a host subprocess is started with a timeout and killed on expiry.
"""

from __future__ import annotations

import abc
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Optional

from edgekit.errors import DeviceInconclusive, DeviceToolError


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
    kernel: Optional[str] = None
    jetpack: Optional[str] = None
    cpu_count: Optional[int] = None
    cpu_features: list[str] = field(default_factory=list)
    emulated: Optional[str] = None


class ProcessTimeout(Exception):
    """A host subprocess ran past its timeout and was killed (partial output attached)."""

    def __init__(self, argv, timeout, stdout, stderr):
        super().__init__(f"timed out after {timeout:g}s")
        self.argv, self.timeout, self.stdout, self.stderr = argv, timeout, stdout, stderr


def run_process(argv, timeout: float, stdin_path: str | None = None, env=None):
    """Run argv (no shell) in its own process group; kill the group on timeout.

    Returns (returncode, stdout, stderr, seconds); raises ProcessTimeout.
    """
    start = time.monotonic()
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            list(argv), stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, env=env,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            raise ProcessTimeout(argv, timeout, _text(out), _text(err)) from None
        except BaseException:
            _kill_group(proc)
            proc.communicate()
            raise
    finally:
        if stdin_path:
            stdin.close()
    return proc.returncode, _text(out), _text(err), time.monotonic() - start


def _kill_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


# One POSIX sh probe; each section starts with a marker line. Missing files print nothing.
FACTS_SCRIPT = r"""
s() { echo "@@edgekit:$1"; }
s model; cat /proc/device-tree/model 2>/dev/null; echo
s cpuinfo; cat /proc/cpuinfo 2>/dev/null
s osrelease; cat /etc/os-release 2>/dev/null
s uname; uname -srm 2>/dev/null
s tegra; head -n 1 /etc/nv_tegra_release 2>/dev/null
s governor; cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null
s nproc; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null
s thermal
for z in /sys/class/thermal/thermal_zone*; do
  [ -r "$z/temp" ] && echo "$(cat "$z/type" 2>/dev/null || basename "$z")=$(cat "$z/temp" 2>/dev/null)"
done
s runtimes
if [ -n "$1" ]; then "$1" -c "$2" 2>/dev/null; fi
s end
"""

RUNTIMES_PY = (
    "import importlib\n"
    "for m in ('ai_edge_litert','tflite_runtime','onnxruntime','numpy'):\n"
    "    try:\n"
    "        mod = importlib.import_module(m)\n"
    "    except Exception:\n"
    "        continue\n"
    "    print(m + '=' + str(getattr(mod, '__version__', 'unknown')))\n"
    # the userland the harness runs in, as its python sees it (under qemu-user: the guest's)
    "import os, platform\n"
    "print('@@edgekit:python')\n"
    "print('machine=' + platform.machine())\n"
    "print('emulated=' + os.environ.get('EDGEKIT_EMULATED', ''))\n"
    "try:\n"
    "    info = dict(l.split(':', 1) for l in open('/proc/cpuinfo') if ':' in l)\n"
    "    info = dict((k.strip(), v.strip()) for k, v in info.items())\n"
    "    print('features=' + info.get('Features', ''))\n"
    "    print('cpu=' + (info.get('model name') or info.get('Processor') or ''))\n"
    "except Exception:\n"
    "    pass\n"
)
ISA_FAMILIES = {"x86_64": "x86", "amd64": "x86", "i386": "x86", "i686": "x86", "aarch64": "arm",
                "arm64": "arm", "armv7l": "arm", "armv8l": "arm"}


def parse_facts(text: str) -> DeviceFacts:
    """Parse FACTS_SCRIPT output; anything absent or unparsable stays None."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("@@edgekit:"):
            current = line[len("@@edgekit:"):].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)

    def first(name):
        lines = [line.strip().strip("\x00") for line in sections.get(name, [])]
        return next((line for line in lines if line), None)

    facts = DeviceFacts()
    facts.model = first("model")
    cpuinfo = _key_values(sections.get("cpuinfo", []), ":")
    facts.cpu = cpuinfo.get("model name") or cpuinfo.get("Processor") or cpuinfo.get("Hardware")
    facts.soc = cpuinfo.get("Hardware")
    if facts.model is None and cpuinfo.get("Model"):
        facts.model = cpuinfo["Model"]
    release = _key_values(sections.get("osrelease", []), "=")
    facts.os = release.get("PRETTY_NAME", "").strip('"') or None
    facts.os_version = release.get("VERSION_ID", "").strip('"') or None
    uname = first("uname")
    if uname:
        parts = uname.split()
        facts.kernel = " ".join(parts[:2]) if len(parts) >= 2 else uname
        facts.abi = parts[-1] if len(parts) >= 3 else None
        facts.os = facts.os or parts[0]
    facts.jetpack = first("tegra")
    facts.governor = first("governor")
    count = first("nproc")
    facts.cpu_count = int(count) if count and count.isdigit() else None
    facts.temperatures_c = parse_temperatures(sections.get("thermal", []))
    facts.runtimes = _key_values(sections.get("runtimes", []), "=")
    python = _key_values(sections.get("python", []), "=")
    facts.cpu_features = (python.get("features") or cpuinfo.get("Features") or "").split()
    machine = python.get("machine")
    if machine and facts.abi and machine != facts.abi:  # a translated userland: python's wins
        kernel_isa, user_isa = ISA_FAMILIES.get(facts.abi), ISA_FAMILIES.get(machine)
        if kernel_isa and user_isa and kernel_isa != user_isa:
            facts.emulated = f"{machine} userland on a {facts.abi} kernel"
            facts.cpu = f"{python.get('cpu') or machine}, emulated on {facts.cpu or facts.abi}"
        facts.abi = machine
    facts.emulated = python.get("emulated") or facts.emulated
    return facts


def parse_temperatures(lines) -> dict[str, float]:
    """'type=millidegrees' lines -> {type: degrees C}; duplicate types get a _N suffix."""
    temps: dict[str, float] = {}
    for line in lines:
        name, sep, value = line.partition("=")
        try:
            milli = int(value.strip())
        except ValueError:
            continue
        if not sep or not name.strip():
            continue
        key, n = name.strip(), 1
        while key in temps:
            key, n = f"{name.strip()}_{n}", n + 1
        temps[key] = milli / 1000.0
    return temps


def _key_values(lines, sep: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        key, found, value = line.partition(sep)
        if found and key.strip() and key.strip() not in out:
            out[key.strip()] = value.strip()
    return out


class Device(abc.ABC):
    """One target machine. Use as `with device: ...`; every call takes a timeout in seconds.

    `python` is the interpreter that runs the harness on the device (None: no python there).
    """

    kind: str = "abstract"
    python: Optional[str] = None
    emulated: Optional[str] = None  # set from the inventory's `emulated: true`

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

    def facts(self, timeout: float) -> DeviceFacts:
        """Model, SoC, OS, governor, temperatures and runtimes, via one POSIX sh probe."""
        argv = ["sh", "-c", FACTS_SCRIPT, "sh", self.python or "", RUNTIMES_PY]
        return parse_facts(self.run(argv, timeout=timeout, check=False).stdout)

    def verify_sha256(self, remote: str, expected: str, timeout: float) -> None:
        """Check a device file's sha256 (sha256sum, else the device python); DeviceToolError if not."""
        script = (
            'if command -v sha256sum >/dev/null 2>&1; then sha256sum -- "$1"; '
            'elif [ -n "$2" ]; then "$2" -c "import hashlib,sys;'
            "h=hashlib.sha256();f=open(sys.argv[1],'rb');"
            "[h.update(b) for b in iter(lambda: f.read(1<<20), b'')];print(h.hexdigest())\" \"$1\"; "
            "else exit 127; fi"
        )
        result = self.run(["sh", "-c", script, "sh", remote, self.python or ""], timeout, check=False)
        words = result.stdout.split()
        if result.returncode != 0 or not words:
            raise DeviceToolError(
                f"cannot hash {remote} on the device (no sha256sum or python): "
                f"{result.stderr.strip()[-200:]}", self.name)
        if words[0].lower() != expected.lower():
            raise DeviceToolError(
                f"{remote}: sha256 on the device {words[0][:16]}… differs from the host "
                f"{expected[:16]}… (corrupted copy)", self.name)


def collect_facts(device: Device, timeout: float) -> DeviceFacts:
    """`device.facts()`, marked emulated when the device says so or the inventory does."""
    facts = device.facts(timeout)
    facts.emulated = facts.emulated or device.emulated
    return facts


def timeout_error(device: str, what: str, timeout: float) -> DeviceInconclusive:
    """The one wording for a step that ran past its timeout."""
    return DeviceInconclusive(f"{what} timed out after {timeout:g}s", device)
