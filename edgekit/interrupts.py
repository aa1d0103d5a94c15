"""Ctrl-C and SIGTERM: both raise KeyboardInterrupt in the main thread, up to the commit point.

`install()` (the CLI's first step) sets both handlers explicitly. Python installs its Ctrl-C
handler only when SIGINT is not ignored at start, and a background job of a non-interactive shell
(`cmd &` in a CI script) inherits SIGINT ignored: Ctrl-C was then silently dropped and the run
finished with exit 0.

`hold()` makes the handlers record instead of raise. A run holds from the moment it publishes its
output (`fsutil.atomic_output_dir(final=True)`), and the CLI holds once its exit code is known, so
an interrupt lands either before the commit (exit 130, previous output untouched) or after it
(ignored: the run is complete). Before this, a SIGINT near the end of a run could end it by the
signal (exit -2) or give 130 with the new output in place. `release()` raises again, first for
one recorded while held. Handlers are Python-level, so processes started meanwhile get the default
disposition at exec; workers still call `restore_in_child()` (SIGINT may be inherited ignored).
"""

from __future__ import annotations

import signal
import threading

_state = {"installed": False, "held": False, "pending": False}


def _on_signal(signum, frame):
    if _state["held"]:
        _state["pending"] = True
        return
    raise KeyboardInterrupt


def defer() -> None:
    """Record SIGINT/SIGTERM until install() (the entry point's first step, before the CLI loads:
    an interrupt while it loads is then exit 130, not a traceback and exit -2)."""
    _state.update(held=True, pending=False)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def install() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt (even where SIGINT was inherited ignored); one
    recorded since defer() is raised now."""
    pending = _state["pending"]
    _state.update(installed=True, held=False, pending=False)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    if pending:
        raise KeyboardInterrupt


def reset() -> None:
    """Back to Python's defaults (for in-process callers of the CLI, such as tests)."""
    _state.update(installed=False, held=False, pending=False)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def installed() -> bool:
    """True in the CLI process (install() was called): a final commit then holds until exit."""
    return _state["installed"]


def restore_in_child() -> None:
    """In a worker process: Ctrl-C/SIGTERM raise KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def held() -> bool:
    return _state["held"]


def hold() -> None:
    """From now on SIGINT/SIGTERM are recorded, not raised (main thread only: elsewhere Python
    raises nothing). A library caller's SIGINT handler is swapped out until release()."""
    if threading.current_thread() is not threading.main_thread() or _state["held"]:
        return
    current = signal.getsignal(signal.SIGINT)
    if current is not _on_signal:
        _state["saved"] = current
        signal.signal(signal.SIGINT, _on_signal)
    _state["held"] = True


def release() -> None:
    """Raise on SIGINT/SIGTERM again; one recorded while held is raised now as KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        return
    _state["held"] = False
    if "saved" in _state:
        signal.signal(signal.SIGINT, _state.pop("saved"))
    pending, _state["pending"] = _state["pending"], False
    if pending:
        raise KeyboardInterrupt
