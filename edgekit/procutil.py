"""Child processes: die with the parent, start with a fixed hash seed, stop within seconds."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading

STOP_GRACE_SECONDS = 3
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child: SIGKILL when the parent dies (Linux PR_SET_PDEATHSIG; elsewhere nothing)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass  # not Linux: the child may outlive a SIGKILLed parent


def die_with_parent_process() -> None:
    """In a multiprocessing child: SIGKILL itself when the parent process ends (its sentinel pipe
    closes), whichever parent thread started it; PR_SET_PDEATHSIG would fire when that thread
    ends (a pool started from a background thread). Outside multiprocessing: die_with_parent()."""
    parent = multiprocessing.parent_process()
    if parent is None:
        die_with_parent()
        return

    def watch():
        parent.join()
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="edgekit-parent-watch", daemon=True).start()


@contextlib.contextmanager
def fixed_hash_seed():
    """The spawned interpreter reads PYTHONHASHSEED from the environment at its start."""
    saved = os.environ.get("PYTHONHASHSEED")
    os.environ["PYTHONHASHSEED"] = "0"
    try:
        yield
    finally:
        if saved is None:
            del os.environ["PYTHONHASHSEED"]
        else:
            os.environ["PYTHONHASHSEED"] = saved


def stop_process(process, sig: int = signal.SIGINT) -> None:
    """Interrupt the child with `sig` [default SIGINT] (it stops its own children); kill it if it
    has not ended in the grace time."""
    if process.is_alive():
        try:
            os.kill(process.pid, sig)
        except ProcessLookupError:
            return
        process.join(STOP_GRACE_SECONDS)
    if process.is_alive():
        process.kill()
        process.join()
