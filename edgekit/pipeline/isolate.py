"""Run native-crash-prone work (converters, quantizers) in a child process.

A segfault or abort in TensorFlow/onnxruntime becomes a one-line ConversionError instead of a
dead CLI. EdgekitErrors raised in the child are re-raised in the parent as the same class;
progress steps are forwarded; Ctrl-C/SIGTERM interrupt the child, which cleans up its staging
directory, and the parent exits 130. The child dies with the parent (Linux PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import traceback
from typing import Callable

from edgekit import errors
from edgekit.errors import ConversionError, EdgekitError

POLL_SECONDS = 0.2
CLEANUP_SECONDS = 15
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass  # not Linux: the child may outlive a SIGKILLed parent


def _child(conn, func, args, log_level) -> None:
    _die_with_parent()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    from edgekit.logs import setup_logging

    setup_logging(log_level)

    def send(kind, payload):
        try:
            conn.send((kind, payload))
        except (BrokenPipeError, EOFError):  # the parent is gone: nobody to tell
            pass

    try:
        result = func(*args, on_step=lambda step: send("step", step))
        send("result", result)
    except EdgekitError as err:
        send("error", (type(err).__name__, err.problem, err.path))
    except KeyboardInterrupt:
        send("interrupted", None)
    except BaseException:  # a bug: keep the traceback for the parent
        send("crash", traceback.format_exc())
    finally:
        conn.close()


@contextlib.contextmanager
def _fixed_hash_seed():
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


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def run_isolated(func: Callable, *args, on_step: Callable[[str], None] = lambda s: None):
    """Call func(*args, on_step=...) in a spawned child process and return its (picklable) result."""
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    level = logging.getLogger("edgekit").getEffectiveLevel()
    process = ctx.Process(target=_child, args=(sender, func, args, level), name="edgekit-worker")
    with _fixed_hash_seed():  # set iteration order inside converters is the same on every run
        process.start()
    sender.close()
    outcome = None
    try:
        while outcome is None:
            if receiver.poll(POLL_SECONDS):
                try:
                    kind, payload = receiver.recv()
                except EOFError:
                    break
                if kind == "step":
                    on_step(payload)
                else:
                    outcome = (kind, payload)
            elif not process.is_alive() and not receiver.poll(0):
                break
    except KeyboardInterrupt:
        _stop(process)
        raise
    process.join()
    if outcome is None:
        code = process.exitcode
        how = _signal_name(code) if code is not None and code < 0 else f"exit status {code}"
        raise ConversionError(f"the conversion process crashed ({how}); no output was written")
    kind, payload = outcome
    if kind == "result":
        return payload
    if kind == "error":
        name, problem, path = payload
        raise getattr(errors, name, EdgekitError)(problem, path)
    if kind == "interrupted":
        raise KeyboardInterrupt
    raise RuntimeError(f"edgekit worker failed:\n{payload}")


def _stop(process) -> None:
    """Interrupt the child so it removes its staging directory; kill it if it does not end."""
    if process.is_alive():
        try:
            os.kill(process.pid, signal.SIGINT)
        except ProcessLookupError:
            return
        process.join(CLEANUP_SECONDS)
    if process.is_alive():
        process.kill()
        process.join()
