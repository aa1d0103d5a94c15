"""A real OpenSSH server on 127.0.0.1 for tests: generated host key, one authorized client key."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.access("/usr/sbin/sshd", os.X_OK) else None)
SFTP_SERVER = next((p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                                "/usr/libexec/sftp-server") if os.path.exists(p)), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgekit-test", "-f",
                    str(path)], check=True)
    return path


def fingerprint(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], check=True, capture_output=True,
                         text=True).stdout
    return out.split()[1]


class SshServer:
    """`sshd -D -e` on a free loopback port; `client_config` is an ssh -F file for alias `alias`."""

    alias = "edgekit-test"

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.user = getpass.getuser()
        self.host_key = keygen(root / "host_ed25519")
        self.client_key = keygen(root / "client_ed25519")
        (root / "authorized_keys").write_text((root / "client_ed25519.pub").read_text())
        self.known_hosts = root / "known_hosts"
        self.config = root / "sshd_config"
        self.client_config = root / "ssh_config"
        self.log = root / "sshd.log"
        self.proc: subprocess.Popen | None = None
        self._write_configs()

    @property
    def host_fingerprint(self) -> str:
        return fingerprint(self.root / "host_ed25519.pub")

    def _write_configs(self) -> None:
        lines = [f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}",
                 f"PidFile {self.root / 'sshd.pid'}", f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
                 "UsePAM no", "StrictModes no", "PasswordAuthentication no",
                 "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
                 "PermitRootLogin prohibit-password", f"AllowUsers {self.user}", "LogLevel VERBOSE",
                 "ClientAliveInterval 0",
                 # bash sources ~/.bashrc for ssh commands only when SHLVL < 2: the test server's
                 # sessions skip the developer's rc files (here, `pyenv init`, whose rehash lock a
                 # session killed on purpose can leave behind, stalling every later session).
                 "SetEnv SHLVL=1 PYENV_REHASH_TIMEOUT=1"]
        if SFTP_SERVER:
            lines.append(f"Subsystem sftp {SFTP_SERVER}")
        self.config.write_text("\n".join(lines) + "\n")
        self.client_config.write_text(
            f"Host {self.alias}\n  HostName 127.0.0.1\n  Port {self.port}\n  User {self.user}\n"
            f"  IdentityFile {self.client_key}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts}\n  GlobalKnownHostsFile /dev/null\n"
            "  LogLevel ERROR\n")

    def trust_host_key(self) -> None:
        key = (self.root / "host_ed25519.pub").read_text().split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {' '.join(key)}\n")

    def start(self) -> "SshServer":
        if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)],
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text()[-500:]}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen: {self.log.read_text()[-500:]}")

    def _children(self) -> list[int]:
        """Pids of the sshd's descendants (per-connection servers and sessions)."""
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        found, frontier = [], [self.proc.pid]
        while frontier:
            parent = frontier.pop()
            kids = [pid for pid, ppid in parents.items() if ppid == parent]
            found += kids
            frontier += kids
        return found

    def wait_for_command(self, needle: str, timeout: float = 30.0) -> bool:
        """Wait until a process served by this sshd has `needle` in its command line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pid in self._children():
                try:
                    if needle.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                        return True
                except OSError:
                    continue
            time.sleep(0.05)
        return False

    def drop_connections(self) -> None:
        """Kill the sshd and every connection it serves, as a crashed or powered-off board would."""
        children = self._children()
        self.stop()
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
