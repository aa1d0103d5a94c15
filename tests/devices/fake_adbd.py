"""A loopback Android device for tests: a TCP server on 127.0.0.1 speaking the ADB transport protocol.

The real `adb` client reaches it with `adb connect 127.0.0.1:PORT`, then uses the same code path as
for a phone. Written from the AOSP protocol docs (packages/modules/adb: protocol.txt, SERVICES.TXT,
SYNC.TXT, shell_protocol.h, file_sync_protocol.h):

* transport messages: 24-byte header (command, arg0, arg1, data_length, data_check, magic =
  command ^ 0xffffffff), little endian; CNXN handshake answered directly (no AUTH, as on a device
  with ro.adb.secure=0) unless `require_auth` is set, then every host key is refused (the host
  shows the device as `unauthorized`); OPEN/OKAY/WRTE/CLSE streams with local/remote ids and one
  outstanding WRTE per stream (the sender waits for OKAY).
* `shell:CMD` (raw bytes, stdout and stderr merged, no exit status) and `shell,v2,...:CMD` (shell
  protocol packets: 1-byte id + u32 length; stdin/stdout/stderr/exit/close-stdin/window-size).
  Commands run under /bin/sh in a temp dir that stands for /data/local/tmp (the prefix is mapped
  to that dir), with a `getprop` on PATH that answers from a dict of Android-like properties.
* `sync:` with STAT (v1), STA2/LST2 (stat_v2), LIST, SEND (DATA chunks, DONE with mtime), RECV and
  QUIT. adb 29 (Debian's client) speaks no SND2/RCV2, so `sendrecv_v2` is never advertised.

Test knobs: `shell_v2=False` (features without shell_v2: the client falls back to `shell:`),
`corrupt_push=True` (flip one byte of every pushed file), `disappear()` (drop every connection
and stop listening, as a phone unplugged mid-run).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import pytest

A_CNXN, A_OPEN, A_OKAY = 0x4E584E43, 0x4E45504F, 0x59414B4F
A_CLSE, A_WRTE, A_AUTH = 0x45534C43, 0x45545257, 0x48545541
A_VERSION = 0x01000001
MAX_PAYLOAD = 256 * 1024
SYNC_DATA_MAX = 64 * 1024
HEADER = struct.Struct("<6I")
AUTH_TOKEN, AUTH_SIGNATURE = 1, 2
DEVICE_TMP = "/data/local/tmp"

SHELL_STDIN, SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT, SHELL_CLOSE_STDIN = 0, 1, 2, 3, 4

DEFAULT_PROPS = {
    "ro.product.name": "edgekit_fake",
    "ro.product.model": "Loopback 7",
    "ro.product.device": "loopback",
    "ro.product.manufacturer": "edgekit",
    "ro.soc.model": "SM8550",
    "ro.board.platform": "kalama",
    "ro.build.version.release": "14",
    "ro.build.version.sdk": "34",
    "ro.product.cpu.abi": "arm64-v8a",
}


class StreamClosed(Exception):
    """The stream or its connection went away."""


class Stream:
    """One adb stream as the device sees it: ordered bytes in, flow-controlled WRTEs out."""

    def __init__(self, conn: "Connection", local_id: int, remote_id: int):
        self.conn, self.local_id, self.remote_id = conn, local_id, remote_id
        self._buffer = bytearray()
        self._cond = threading.Condition()
        self._okay = threading.Event()
        self._write_lock = threading.Lock()
        self.closed = False
        self.on_close = None  # callback run once when the host closes the stream

    def feed(self, data: bytes) -> None:
        with self._cond:
            self._buffer.extend(data)
            self._cond.notify_all()

    def read_exact(self, size: int) -> Optional[bytes]:
        """`size` bytes from the host, or None once the stream is closed first."""
        with self._cond:
            while len(self._buffer) < size and not self.closed:
                self._cond.wait()
            if len(self._buffer) < size:
                return None
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            return data

    def read_some(self) -> Optional[bytes]:
        with self._cond:
            while not self._buffer and not self.closed:
                self._cond.wait()
            if not self._buffer:
                return None
            data = bytes(self._buffer)
            self._buffer.clear()
            return data

    def acknowledge(self) -> None:
        self._okay.set()

    def write(self, data: bytes) -> None:
        """Send `data` as WRTE messages, waiting for the host's OKAY after each one."""
        with self._write_lock:
            for start in range(0, len(data), self.conn.max_payload):
                if self.closed:
                    raise StreamClosed()
                self._okay.clear()
                self.conn.send(A_WRTE, self.local_id, self.remote_id, data[start : start + self.conn.max_payload])
                while not self._okay.wait(0.2):
                    if self.closed:
                        raise StreamClosed()

    def close(self) -> None:
        """Close from the device side (sends CLSE once)."""
        if not self.closed:
            self.mark_closed()
            with contextlib.suppress(OSError):
                self.conn.send(A_CLSE, self.local_id, self.remote_id)
            self.conn.forget(self.local_id)

    def mark_closed(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        self._okay.set()


class Connection:
    """One transport connection from the adb server: handshake, message loop, stream table."""

    def __init__(self, device: "FakeAdbd", sock: socket.socket):
        self.device, self.sock = device, sock
        self.max_payload = 4096
        self._send_lock = threading.Lock()
        self._streams: dict[int, Stream] = {}
        self._next_id = 1

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        header = HEADER.pack(command, arg0, arg1, len(data), sum(data) & 0xFFFFFFFF, command ^ 0xFFFFFFFF)
        with self._send_lock:
            self.sock.sendall(header + data)

    def forget(self, local_id: int) -> None:
        self._streams.pop(local_id, None)

    def _recv_exact(self, size: int) -> Optional[bytes]:
        chunks, left = [], size
        while left:
            chunk = self.sock.recv(left)
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def serve(self) -> None:
        try:
            while True:
                header = self._recv_exact(HEADER.size)
                if header is None:
                    return
                command, arg0, arg1, length, _check, magic = HEADER.unpack(header)
                if magic != command ^ 0xFFFFFFFF or length > 1024 * 1024:
                    return  # not an adb peer: drop the connection as adbd does
                data = self._recv_exact(length) if length else b""
                if data is None:
                    return
                self._dispatch(command, arg0, arg1, data)
        except OSError:
            return
        finally:
            self.shutdown()

    def _dispatch(self, command: int, arg0: int, arg1: int, data: bytes) -> None:
        if command == A_CNXN:
            self.max_payload = max(4096, min(arg1, MAX_PAYLOAD))
            if self.device.require_auth:
                self.send(A_AUTH, AUTH_TOKEN, 0, os.urandom(20))
            else:
                self.send(A_CNXN, A_VERSION, self.max_payload, self.device.banner().encode())
        elif command == A_AUTH:
            if arg0 == AUTH_SIGNATURE:  # every key is refused: ask again; a public key gets no answer
                self.send(A_AUTH, AUTH_TOKEN, 0, os.urandom(20))
        elif command == A_OPEN:
            self._open(arg0, data.rstrip(b"\0").decode("utf-8", "replace"))
        elif command == A_OKAY:
            stream = self._streams.get(arg1)
            if stream is not None:
                stream.acknowledge()
        elif command == A_WRTE:
            stream = self._streams.get(arg1)
            if stream is not None:
                stream.feed(data)
                self.send(A_OKAY, stream.local_id, stream.remote_id)
        elif command == A_CLSE:
            stream = self._streams.pop(arg1, None)
            if stream is not None:
                stream.mark_closed()
                if stream.on_close is not None:
                    stream.on_close()

    def _open(self, remote_id: int, service: str) -> None:
        handler = self.device.service_handler(service)
        if handler is None:
            self.send(A_CLSE, 0, remote_id)
            return
        local_id, self._next_id = self._next_id, self._next_id + 1
        stream = Stream(self, local_id, remote_id)
        self._streams[local_id] = stream
        self.send(A_OKAY, local_id, remote_id)
        threading.Thread(target=self._run_service, args=(handler, stream), daemon=True).start()

    @staticmethod
    def _run_service(handler, stream: Stream) -> None:
        try:
            handler(stream)
        except (StreamClosed, OSError):
            pass
        finally:
            stream.close()

    def shutdown(self) -> None:
        for stream in list(self._streams.values()):
            stream.mark_closed()
            if stream.on_close is not None:
                stream.on_close()
        self._streams.clear()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class FakeAdbd:
    """The loopback device: `start()` listens on 127.0.0.1:`port`, `stop()` ends everything."""

    def __init__(
        self,
        root: Path,
        *,
        props: Optional[dict[str, str]] = None,
        shell_v2: bool = True,
        corrupt_push: bool = False,
        require_auth: bool = False,
    ):
        self.root = Path(root).resolve()
        if any(ch in str(self.root) for ch in " '\"$`\\;&|<>*?"):
            raise ValueError(f"device root must be a plain path: {self.root}")
        self.root.mkdir(parents=True, exist_ok=True)
        self.props = dict(DEFAULT_PROPS if props is None else props)
        self.features = ["cmd", "stat_v2", "fixed_push_mkdir"] + (["shell_v2"] if shell_v2 else [])
        self.corrupt_push = corrupt_push
        self.require_auth = require_auth
        self._bin = self.root.parent / f"{self.root.name}-bin"
        self._write_getprop()
        self._listener: Optional[socket.socket] = None
        self._connections: list[Connection] = []
        self._procs: list[subprocess.Popen] = []
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "FakeAdbd":
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, args=(self._listener,), daemon=True).start()
        return self

    @property
    def serial(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(self, sock)
            self._connections.append(conn)
            threading.Thread(target=conn.serve, daemon=True).start()

    def disappear(self) -> None:
        """Stop listening and drop every connection, as a device unplugged mid-run."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for conn in list(self._connections):
            conn.shutdown()
        self._connections.clear()
        for proc in list(self._procs):
            _kill_group(proc)

    stop = disappear

    # -- services ---------------------------------------------------------------------------------
    def banner(self) -> str:
        keys = ("ro.product.name", "ro.product.model", "ro.product.device")
        fields = "".join(f"{key}={self.props.get(key, '')};" for key in keys)
        return f"device::{fields}features={','.join(self.features)}"

    def service_handler(self, service: str):
        """The handler for an OPEN'd service name, or None (the stream is refused)."""
        name, _, command = service.partition(":")
        kind, *args = name.split(",")
        if kind == "shell" and "v2" in args:
            if "shell_v2" not in self.features:
                return None
            return lambda stream: self._shell(stream, command, protocol=True)
        if kind in ("shell", "exec") and not args:
            return lambda stream: self._shell(stream, command, protocol=False)
        if service == "sync:":
            return lambda stream: SyncSession(self, stream).serve()
        return None

    def map_path(self, path: str) -> Optional[Path]:
        """Host path for a device path under /data/local/tmp; None for anything else."""
        if path != DEVICE_TMP and not path.startswith(DEVICE_TMP + "/"):
            return None
        mapped = Path(os.path.normpath(str(self.root) + path[len(DEVICE_TMP) :]))
        return mapped if mapped == self.root or self.root in mapped.parents else None

    def _write_getprop(self) -> None:
        self._bin.mkdir(parents=True, exist_ok=True)
        props_file = self._bin / "build.prop"
        props_file.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()), encoding="utf-8")
        script = self._bin / "getprop"
        script.write_text(
            "#!/bin/sh\n"
            f"props={shlex.quote(str(props_file))}\n"
            'if [ "$#" -eq 0 ]; then\n'
            '  while IFS= read -r line; do printf "[%s]: [%s]\\n" "${line%%=*}" "${line#*=}"; done < "$props"\n'
            "  exit 0\n"
            "fi\n"
            'while IFS= read -r line; do\n'
            '  if [ "${line%%=*}" = "$1" ]; then printf "%s\\n" "${line#*=}"; exit 0; fi\n'
            'done < "$props"\n'
            'printf "%s\\n" "${2:-}"\n',
            encoding="utf-8",
        )
        script.chmod(0o755)

    def _shell(self, stream: Stream, command: str, protocol: bool) -> None:
        if not command.strip():
            command = "exit 0"  # interactive shells are not offered by this device
        command = command.replace(DEVICE_TMP, str(self.root))
        env = {
            "PATH": f"{self._bin}:{os.path.dirname(sys.executable)}:/usr/bin:/bin",
            "HOME": str(self.root),
            "TMPDIR": str(self.root),
            "LANG": "C.UTF-8",
        }
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=self.root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if protocol else subprocess.STDOUT,
            start_new_session=True,
        )
        self._procs.append(proc)
        stream.on_close = lambda: _kill_group(proc)
        try:
            if protocol:
                self._pump_v2(stream, proc)
            else:
                threading.Thread(target=_feed_stdin_raw, args=(stream, proc), daemon=True).start()
                _copy_out(proc.stdout, stream.write)
                proc.wait()
        finally:
            _kill_group(proc)
            self._procs.remove(proc)

    @staticmethod
    def _pump_v2(stream: Stream, proc: subprocess.Popen) -> None:
        def packet(kind: int, data: bytes) -> None:
            stream.write(struct.pack("<BI", kind, len(data)) + data)

        threading.Thread(target=_feed_stdin_v2, args=(stream, proc), daemon=True).start()
        err = threading.Thread(target=_copy_out, args=(proc.stderr, lambda d: packet(SHELL_STDERR, d)), daemon=True)
        err.start()
        _copy_out(proc.stdout, lambda d: packet(SHELL_STDOUT, d))
        err.join()
        code = proc.wait()
        packet(SHELL_EXIT, bytes([(128 - code if code < 0 else code) & 0xFF]))


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _copy_out(pipe, sink) -> None:
    while chunk := pipe.read1(SYNC_DATA_MAX):
        sink(chunk)


def _feed_stdin_raw(stream: Stream, proc: subprocess.Popen) -> None:
    with contextlib.suppress(OSError, ValueError):
        while (data := stream.read_some()) is not None:
            proc.stdin.write(data)
            proc.stdin.flush()
    with contextlib.suppress(OSError, ValueError):
        proc.stdin.close()


def _feed_stdin_v2(stream: Stream, proc: subprocess.Popen) -> None:
    with contextlib.suppress(OSError, ValueError):
        while (header := stream.read_exact(5)) is not None:
            kind, length = struct.unpack("<BI", header)
            data = stream.read_exact(length) if length else b""
            if data is None:
                break
            if kind == SHELL_STDIN:
                proc.stdin.write(data)
                proc.stdin.flush()
            elif kind == SHELL_CLOSE_STDIN:
                break
    with contextlib.suppress(OSError, ValueError):
        proc.stdin.close()


class SyncSession:
    """The `sync:` service: 8-byte requests (id, length) followed by a path, until QUIT."""

    def __init__(self, device: FakeAdbd, stream: Stream):
        self.device, self.stream = device, stream

    def _reply(self, ident: bytes, *fields: int, fmt: str = "", data: bytes = b"") -> None:
        self.stream.write(ident + struct.pack("<" + fmt, *fields) + data)

    def _fail(self, message: str) -> None:
        data = message.encode()
        self._reply(b"FAIL", len(data), fmt="I", data=data)

    def serve(self) -> None:
        while (request := self.stream.read_exact(8)) is not None:
            ident, length = request[:4], struct.unpack("<I", request[4:])[0]
            if ident == b"QUIT":
                return
            if length > 1024:
                self._fail("path too long")
                return
            path = (self.stream.read_exact(length) or b"").decode("utf-8", "surrogateescape")
            handler = {
                b"STAT": self._stat_v1,
                b"STA2": self._stat_v2,
                b"LST2": self._stat_v2,
                b"LIST": self._list,
                b"RECV": self._recv,
                b"SEND": self._send,
            }.get(ident)
            if handler is None:
                self._fail(f"unknown sync request {ident!r}")
                return
            handler(ident, path)

    def _lstat(self, path: str):
        mapped = self.device.map_path(path)
        if mapped is None:
            return None, 13  # EACCES: outside the sandbox
        try:
            return os.lstat(mapped), 0
        except OSError as err:
            return None, err.errno

    def _stat_v1(self, _ident: bytes, path: str) -> None:
        st, _ = self._lstat(path)
        fields = (st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime)) if st else (0, 0, 0)
        self._reply(b"STAT", *fields, fmt="III")

    def _stat_v2(self, ident: bytes, path: str) -> None:
        st, error = self._lstat(path)
        if st is None:
            self._reply(ident, error, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, fmt="IQQIIIIQqqq")
            return
        self._reply(
            ident, 0, st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_uid, st.st_gid,
            st.st_size, int(st.st_atime), int(st.st_mtime), int(st.st_ctime), fmt="IQQIIIIQqqq",
        )  # fmt: skip

    def _list(self, _ident: bytes, path: str) -> None:
        mapped = self.device.map_path(path)
        names = sorted(os.listdir(mapped)) if mapped is not None and mapped.is_dir() else []
        for name in [".", ".."] + names:
            st = os.lstat(mapped / name)
            encoded = name.encode("utf-8", "surrogateescape")
            self._reply(b"DENT", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime), len(encoded), fmt="IIII", data=encoded)
        self._reply(b"DONE", 0, 0, 0, 0, fmt="IIII")

    def _recv(self, _ident: bytes, path: str) -> None:
        mapped = self.device.map_path(path)
        if mapped is None or not mapped.is_file():
            self._fail(f"open failed: {'Permission denied' if mapped is None else 'No such file or directory'}")
            return
        with open(mapped, "rb") as handle:
            while chunk := handle.read(SYNC_DATA_MAX):
                self._reply(b"DATA", len(chunk), fmt="I", data=chunk)
        self._reply(b"DONE", 0, fmt="I")

    def _send(self, _ident: bytes, spec: str) -> None:
        path, _, mode_text = spec.rpartition(",")
        mapped = self.device.map_path(path)
        mode = int(mode_text) if mode_text.isdigit() else 0o644
        tmp = None if mapped is None else mapped.with_name(f".{mapped.name}.sync-tmp")
        handle = None
        if tmp is not None:
            tmp.parent.mkdir(parents=True, exist_ok=True)
            handle = open(tmp, "wb")
        mtime = None
        try:
            while mtime is None:
                header = self.stream.read_exact(8)
                if header is None:
                    raise StreamClosed()
                ident, value = header[:4], struct.unpack("<I", header[4:])[0]
                if ident == b"DATA":
                    if value > SYNC_DATA_MAX:
                        self._fail("data chunk too large")
                        raise StreamClosed()
                    chunk = self.stream.read_exact(value)
                    if chunk is None:
                        raise StreamClosed()
                    if handle is not None:
                        handle.write(chunk)
                elif ident == b"DONE":
                    mtime = value
                else:
                    self._fail(f"unexpected {ident!r} in SEND")
                    raise StreamClosed()
        except StreamClosed:
            if handle is not None:
                handle.close()
                tmp.unlink(missing_ok=True)
            raise
        if handle is None:
            self._fail(f"couldn't create file: Permission denied: {path}")
            return
        handle.close()
        if self.device.corrupt_push and tmp.stat().st_size:
            with open(tmp, "r+b") as damaged:
                first = damaged.read(1)
                damaged.seek(0)
                damaged.write(bytes([first[0] ^ 0xFF]))
        os.chmod(tmp, stat.S_IMODE(mode) or 0o644)
        os.replace(tmp, mapped)
        os.utime(mapped, (mtime, mtime))
        self._reply(b"OKAY", 0, fmt="I")


# -- pytest fixtures (import them into a test module) ---------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def adb_command(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    """Run the host `adb` client against the private test server."""
    return subprocess.run(["adb", *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def adb_server(tmp_path_factory):
    """A private adb server for the session (ANDROID_ADB_SERVER_PORT), killed at teardown."""
    if subprocess.run(["which", "adb"], capture_output=True).returncode != 0:
        pytest.skip("the adb client is not installed (Debian package adb; scripts/install_system_deps.sh)")
    home = tmp_path_factory.mktemp("adb-home")
    port = str(_free_port())
    saved = {key: os.environ.get(key) for key in ("ANDROID_ADB_SERVER_PORT",)}
    os.environ["ANDROID_ADB_SERVER_PORT"] = port
    # The server reads/creates its key pair under $HOME/.android: keep it out of the user's home.
    env = dict(os.environ, HOME=str(home), ANDROID_SDK_HOME=str(home))
    started = subprocess.run(["adb", "start-server"], capture_output=True, text=True, env=env, timeout=30)
    if started.returncode != 0:
        raise RuntimeError(f"adb start-server failed: {started.stderr.strip()}")
    try:
        yield port
    finally:
        adb_command("kill-server", timeout=10)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def connect_fake(device: FakeAdbd, want_state: str = "device", timeout: float = 10.0) -> str:
    """`adb connect` the fake device and wait until the server reports `want_state`."""
    out = adb_command("connect", device.serial)
    # adb 29 says "failed to authenticate" for a device that refuses the host's keys
    if "connected to" not in out.stdout and "failed to authenticate" not in out.stdout:
        raise RuntimeError(f"adb connect {device.serial} failed: {out.stdout.strip()} {out.stderr.strip()}")
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        probe = adb_command("-s", device.serial, "get-state", timeout=5)
        state = probe.stdout.strip() or probe.stderr.strip()
        if want_state in state:
            return device.serial
        time.sleep(0.05)
    raise RuntimeError(f"{device.serial} never reached state {want_state!r} (last: {state!r})")


@pytest.fixture
def fake_device_factory(adb_server, tmp_path):
    """Start loopback devices (`factory(**FakeAdbd kwargs)`), connected through the real adb client."""
    started: list[FakeAdbd] = []

    def factory(want_state: str = "device", **kwargs) -> FakeAdbd:
        device = FakeAdbd(tmp_path / f"device{len(started)}" / "data_local_tmp", **kwargs).start()
        started.append(device)
        connect_fake(device, want_state)
        return device

    yield factory
    for device in started:
        adb_command("disconnect", device.serial, timeout=10)
        device.stop()
