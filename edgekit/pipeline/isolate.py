"""Run native-crash-prone work (converters, quantizers) in a child process.

A segfault or abort in TensorFlow/onnxruntime becomes a one-line ConversionError instead of a
dead CLI. EdgekitErrors raised in the child are re-raised in the parent as the same class;
progress steps are forwarded. The child owns nothing on disk (the parent creates and removes the
staging and work directories), so on Ctrl-C/SIGTERM the parent interrupts it, kills it after
procutil.STOP_GRACE_SECONDS, and exits 130. The child dies with the parent (Linux PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import traceback
from typing import Callable

from edgekit import errors, interrupts
from edgekit.errors import ConversionError, EdgekitError
from edgekit.procutil import die_with_parent, fixed_hash_seed, stop_process

POLL_SECONDS = 0.2


def _child(conn, func, args, log_level) -> None:
    die_with_parent()
    interrupts.restore_in_child()  # SIGINT may be inherited ignored (a background job)
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
    outcome = None
    try:
        with fixed_hash_seed():  # set iteration order inside converters is the same on every run
            process.start()
        sender.close()
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
        process.join()
    except KeyboardInterrupt:
        stop_process(process)
        raise
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
