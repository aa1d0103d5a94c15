"""Atomic outputs: a run either leaves the previous complete output or the new complete one.

`atomic_output_dir(dest)` yields a fresh staging directory beside `dest`; on success it is swapped
into place (Linux: one `renameat2(RENAME_EXCHANGE)`; elsewhere two renames), and on any error or
interrupt the staging directory is removed and `dest` is untouched.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from edgekit.errors import EdgekitError, OutputError

STAGING_PREFIX = ".edgekit-staging-"
RETIRED_PREFIX = ".edgekit-retired-"
_RENAME_EXCHANGE = 2


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` via a temporary file in the same directory and a rename."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same directory and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | Path, data) -> None:
    """Write `data` as indented, key-sorted JSON, atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2; False where the OS cannot."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    func = getattr(libc, "renameat2", None)
    if func is None:
        return False
    at_fdcwd = -100
    result = func(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), _RENAME_EXCHANGE)
    return result == 0


def clean_stale(parent: Path, name: str) -> None:
    """Remove staging/retired leftovers of interrupted runs for output `name` in `parent`."""
    for prefix in (STAGING_PREFIX, RETIRED_PREFIX):
        for leftover in parent.glob(f"{prefix}{name}-*"):
            shutil.rmtree(leftover, ignore_errors=True)


def _publish(staging: Path, dest: Path) -> None:
    if not dest.exists():
        os.rename(staging, dest)
        return
    if not dest.is_dir():
        raise OutputError("exists and is not a directory", dest)
    if _exchange(staging, dest):
        shutil.rmtree(staging, ignore_errors=True)  # staging now holds the old output
        return
    retired = dest.parent / f"{RETIRED_PREFIX}{dest.name}-{os.getpid()}"
    os.rename(dest, retired)
    os.rename(staging, dest)
    shutil.rmtree(retired, ignore_errors=True)


@contextlib.contextmanager
def atomic_output_dir(dest: str | Path, final: bool = False):
    """Yield a staging directory that replaces `dest` as a whole when the block succeeds.

    The swap runs with SIGINT/SIGTERM held (edgekit.interrupts): an interrupt that arrived before
    it cancels the swap. final=True [default False]: `dest` is the run's result, and in the CLI
    the signals stay held after the swap, so a Ctrl-C that comes too late cannot turn a finished
    run into exit 130 or end it by the signal."""
    from edgekit import interrupts

    dest = Path(dest).absolute()
    parent = dest.parent
    staging = None
    was_held = interrupts.held()
    try:
        try:
            parent.mkdir(parents=True, exist_ok=True)
            clean_stale(parent, dest.name)
            staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{dest.name}-", dir=parent))
            os.chmod(staging, 0o777 & ~_umask())
        except OSError as err:
            raise OutputError(f"cannot write output here ({err.strerror})", dest) from None
        yield staging
        interrupts.hold()
        _publish(staging, dest)
    except BaseException:
        if staging is not None:
            remove_tree(staging)
        raise
    finally:
        if not (was_held or (final and interrupts.installed())):
            interrupts.release()  # one that came during the swap is raised now, after it


@contextlib.contextmanager
def work_dir(prefix: str = "edgekit-work-"):
    """A temporary directory (system temp dir) removed at the end even under a second Ctrl-C."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        remove_tree(path)


def remove_tree(path: Path) -> None:
    """rmtree (errors ignored) that a second Ctrl-C cannot cut short: the first one is already
    being raised, and a half-removed staging directory would be left behind."""
    while True:
        try:
            shutil.rmtree(path, ignore_errors=True)
            return
        except KeyboardInterrupt:
            continue


def _temp_dirs() -> re.Pattern:
    """edgekit's temporary directories in a path: staging dirs beside an output, and the
    `edgekit-*` work dirs under the system temp dir (with the separator after them)."""
    tmp = re.escape(tempfile.gettempdir().rstrip("/"))
    return re.compile(rf"(?:{tmp}/edgekit-[\w.-]+|[^\s'\"()]*/{re.escape(STAGING_PREFIX)}[\w.-]+)/?")


@contextlib.contextmanager
def naming_user_paths(model: str | Path):
    """EdgekitErrors raised inside name the user's `model` instead of a file in one of edgekit's
    temporary directories (gone once the run fails): the error's path becomes `model`, with the
    file's name in the message ("in edgekit's intermediate m_fp32.onnx"), and temporary
    directories are dropped from the paths the message quotes."""
    try:
        yield
    except EdgekitError as err:
        pattern = _temp_dirs()
        inside = pattern.match(err.path or "")
        problem = pattern.sub("", err.problem)
        if not inside and problem == err.problem:
            raise
        path = err.path
        if inside:
            path, name = str(model), err.path[inside.end():]
            problem += f" (in edgekit's intermediate {name})" if name else ""
        raise type(err)(problem, path) from None


def sha256_tree(path: str | Path) -> str:
    """sha256 of a file, or of a directory's relative paths and contents (sorted, symlinks skipped)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()):
        digest.update(item.relative_to(path).as_posix().encode() + b"\0")
        digest.update(sha256_file(item).encode())
    return digest.hexdigest()
