"""An emulated aarch64 Linux "board" on loopback ssh: ARM's INT8 kernels without ARM hardware.

    scripts/arm64_board.sh start|stop|status|build

`build` (also run by `start` when needed) makes, once, under $EDGEKIT_ARM64_BOARD_DIR (default
~/.cache/edgekit/arm64-board) a directory named after this script's sha256 (rebuilt when the
script changes): an aarch64 root from Debian 12's arm64 packages (python3.11 and the libraries it
and the wheels need, `apt-get download` with a private apt state, `dpkg -x`), the aarch64 wheels
of numpy, ai-edge-litert and onnxruntime installed into it, a static qemu-aarch64 from Debian 13
(qemu 10; Debian 12's qemu 7.2 crashes onnxruntime at import), and `python`, a wrapper that runs
the aarch64 Python under `qemu-aarch64 -L ROOT` with EDGEKIT_EMULATED set. Needs apt-get,
dpkg-deb, pip and network access once; no root, and nothing outside that directory changes.

`start` runs a loopback OpenSSH server (scripts/boards/sshd.py: fresh host key, one client key)
and prints the `edgekit devices add` line; `stop` ends the sshd whose pid `start` recorded (and
only it); `status` says what is built and running. Exit 0 ok, 1 a failed step (one line on
stderr), 2 usage, 3 `status` of a board that is not running.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from scripts.boards.sshd import SSHD, SshServer  # the loopback sshd the tests run too


DEBIAN = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# the aarch64 userland: Python 3.11 (Debian 12's, as the wheels' cp311 tag wants) and what the
# manylinux wheels load from the system (libstdc++, libgomp); apt-cache adds their dependencies
ROOT_PACKAGES = ["python3.11-minimal", "libpython3.11-stdlib", "libstdc++6", "libgomp1"]
# what apt-cache's closure pulls in that a Python never runs (mailcap's perl, dpkg, tar)
SKIP = {"dpkg", "tar", "install-info", "mailcap", "perl", "perl-base", "perl-modules-5.36",
        "libperl5.36", "libgdbm-compat4"}
QEMU = ("trixie", "qemu-user", "usr/bin/qemu-aarch64")  # static since Debian 13's qemu 10
# the host's versions, so host-vs-board differences are the architecture's, not a release's
WHEELS = ["numpy==2.4.6", "ai-edge-litert==2.3.0", "onnxruntime==1.32.0"]
PLATFORMS = [f"manylinux_2_{minor}_aarch64" for minor in range(17, 37)]  # Debian 12: glibc 2.36


class BoardError(Exception):
    """A step failed; the message is the one line to print."""


def home() -> Path:
    return Path(os.environ.get("EDGEKIT_ARM64_BOARD_DIR")
                or Path.home() / ".cache" / "edgekit" / "arm64-board")


def build_dir() -> Path:
    """The build for this version of the script."""
    return home() / hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def run(argv: list[str], what: str, **kwargs) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise BoardError(f"{what} failed (exit {proc.returncode}): {tail[0]}")
    return proc.stdout


def apt(state: Path, arch: str, suite: str, *args: str) -> str:
    """apt-get/apt-cache on a private state (its own sources, lists, cache; no dpkg status)."""
    if not state.is_dir():
        for sub in ("lists/partial", "cache/archives/partial", "sources.list.d"):
            (state / sub).mkdir(parents=True)
        (state / "status").write_text("")
        (state / "sources.list").write_text(f"deb [signed-by={KEYRING}] {DEBIAN} {suite} main\n")
    options = [f"Dir::State={state}", f"Dir::State::status={state / 'status'}",
               f"Dir::Cache={state / 'cache'}", f"Dir::Etc::SourceList={state / 'sources.list'}",
               f"Dir::Etc::SourceParts={state / 'sources.list.d'}", f"APT::Architecture={arch}",
               f"APT::Architectures={arch}", "Debug::NoLocking=1", "APT::Sandbox::User=root"]
    flags = [arg for opt in options for arg in ("-o", opt)]
    if not (state / "updated").is_file():
        run(["apt-get", "-q", *flags, "update"], f"apt-get update ({arch}, {suite})", cwd=state)
        (state / "updated").write_text("")
    tool, *rest = args
    return run([tool, "-q", *flags, *rest], f"{tool} {rest[0]} ({arch}, {suite})", cwd=state)


def closure(state: Path, arch: str, suite: str, roots: list[str]) -> list[str]:
    """The packages `roots` need (Depends and Pre-Depends, recursively; virtual names dropped)."""
    out = apt(state, arch, suite, "apt-cache", "depends", "--recurse", "--no-recommends",
              "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
              *roots)
    return sorted({line.strip() for line in out.splitlines()
                   if line and not line[0].isspace() and not line.startswith("<")} - SKIP)


def fetch_debs(state: Path, arch: str, suite: str, packages: list[str], dest: Path) -> None:
    apt(state, arch, suite, "apt-get", "download", *packages)
    debs = state / "debs"
    debs.mkdir(exist_ok=True)
    for deb in sorted(state.glob("*.deb")):
        run(["dpkg-deb", "-x", str(deb), str(dest)], f"dpkg-deb -x {deb.name}")
        deb.rename(debs / deb.name)


def build(quiet: bool = False) -> Path:
    """Build (once) the root, qemu, wheels and wrapper; returns the build directory."""
    out = build_dir()
    if (out / "built").is_file():
        return out
    say = (lambda _msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    for old in home().glob("*"):  # builds of other versions of this script, half-built ones
        if old.is_dir() and old.name not in ("sshd", "workdir"):
            shutil.rmtree(old, ignore_errors=True)
    partial = out.with_name(out.name + ".partial")
    root, started = partial / "root", time.monotonic()
    root.mkdir(parents=True)
    say(f"arm64 board: building {out} (Debian arm64 packages, aarch64 wheels, qemu)")
    state = partial / "apt-arm64"
    fetch_debs(state, "arm64", "bookworm", closure(state, "arm64", "bookworm", ROOT_PACKAGES), root)
    suite, package, member = QEMU
    qemu_root = partial / "qemu"
    fetch_debs(partial / "apt-amd64", "amd64", suite, [package], qemu_root)
    qemu = partial / "qemu-aarch64"
    (qemu_root / member).rename(qemu)
    shutil.rmtree(qemu_root)  # the other targets' emulators (~450 MiB)
    site = root / "opt" / "edgekit" / "site-packages"
    wheels = partial / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    tags = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    run([*pip, "download", "-q", "--only-binary=:all:", *tags, "--python-version", "3.11",
         "-d", str(wheels), *WHEELS], "pip download (aarch64 wheels)")
    run([*pip, "install", "-q", "--no-deps", "--no-index", "--only-binary=:all:", *tags,
         "--python-version", "3.11", "--target", str(site), *map(str, sorted(wheels.glob("*.whl")))],
        "pip install --target (aarch64 wheels)")
    version = run([str(qemu), "--version"], "qemu-aarch64 --version").split()[2]
    emulated = f"qemu-user {version} aarch64"  # EDGEKIT_EMULATED: the device facts' `emulated`
    wrapper = partial / "python"
    final_root, final_qemu, final_site = (out / p.relative_to(partial) for p in (root, qemu, site))
    wrapper.write_text(
        "#!/bin/sh\n# aarch64 Python 3.11 under qemu-user (scripts/boards/arm64.py)\n"
        f"EDGEKIT_EMULATED={shlex.quote(emulated)} PYTHONPATH={shlex.quote(str(final_site))} "
        "PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 QEMU_CPU=${QEMU_CPU:-max} \\\n"
        f"  exec {shlex.quote(str(final_qemu))} -L {shlex.quote(str(final_root))} "
        f"{shlex.quote(str(final_root / 'usr/bin/python3.11'))} \"$@\"\n")
    wrapper.chmod(0o755)
    for scratch in ("apt-arm64", "apt-amd64", "wheels"):
        shutil.rmtree(partial / scratch)
    partial.rename(out)
    smoke = run([str(out / "python"), "-c", "import platform,numpy;print(platform.machine())"],
                "the aarch64 python smoke test").strip()
    if smoke != "aarch64":
        raise BoardError(f"the board's python reports machine {smoke!r}, not aarch64")
    sizes = sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and not f.is_symlink())
    (out / "built").write_text(json.dumps({"seconds": round(time.monotonic() - started, 1),
                                           "bytes": sizes}) + "\n")
    say(f"arm64 board: built in {time.monotonic() - started:.0f}s, {sizes / 2**20:.0f} MiB")
    return out


class BoardServer(SshServer):
    alias = "edgekit-arm64"


def state_file() -> Path:
    return home() / "sshd" / "state.json"


def running() -> dict | None:
    """The recorded sshd if its pid is still that sshd, else None."""
    try:
        state = json.loads(state_file().read_text())
        cmdline = Path(f"/proc/{state['pid']}/cmdline").read_bytes()
    except (OSError, ValueError, KeyError):
        return None
    return state if state["sshd_config"].encode() in cmdline else None


def add_line(state: dict) -> str:
    return ("edgekit devices add arm64 --replace --ssh " + BoardServer.alias
            + " --ssh-option " + shlex.quote(f"-F {state['ssh_config']}")
            + " --python " + shlex.quote(state["python"])
            + " --workdir " + shlex.quote(state["workdir"]))


def start() -> dict:
    """Build if needed, start the sshd (unless running), print the `edgekit devices add` line.
    A board serving an older build (the script changed since) is stopped and started anew."""
    state = running()
    if state is not None and state["build"] != str(build_dir()):
        stop()
        state = None
    if state is None:
        if SSHD is None:
            raise BoardError("no OpenSSH server (sshd): run scripts/install_system_deps.sh")
        out = build()
        root = home() / "sshd"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        server = BoardServer(root).start()
        server.trust_host_key()
        state = {"pid": server.proc.pid, "port": server.port, "sshd_config": str(server.config),
                 "ssh_config": str(server.client_config), "python": str(out / "python"),
                 "workdir": str(home() / "workdir"), "build": str(out)}
        state_file().write_text(json.dumps(state, indent=1) + "\n")
    print(add_line(state))
    return state


def stop() -> bool:
    """SIGTERM the recorded sshd (only that pid); True if one was running."""
    state = running()
    if state is None:
        return False
    os.kill(state["pid"], signal.SIGTERM)
    for _ in range(100):
        if running() is None:
            break
        time.sleep(0.05)
    state_file().unlink(missing_ok=True)
    return True


def status() -> int:
    out = build_dir()
    built = json.loads((out / "built").read_text()) if (out / "built").is_file() else None
    print(f"build: {out} " + (f"(built in {built['seconds']}s, {built['bytes'] / 2**20:.0f} MiB)"
                              if built else "(not built)"))
    state = running()
    print(f"sshd: pid {state['pid']} on 127.0.0.1:{state['port']}" if state else "sshd: stopped")
    if state:
        print(add_line(state))
    return 0 if state else 3


def main(argv: list[str]) -> int:
    commands = {"start": lambda: start() and 0, "stop": lambda: print(
        "stopped" if stop() else "not running") or 0, "status": status,
        "build": lambda: print(build()) or 0}
    if len(argv) != 1 or argv[0] not in commands:
        print(f"usage: {Path(sys.argv[0]).name} {'|'.join(commands)}", file=sys.stderr)
        return 2
    try:
        return commands[argv[0]]()
    except BoardError as err:
        print(f"arm64 board: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
