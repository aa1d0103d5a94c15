"""Task functions for the executor tests (module level: spawned workers import them by name)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def stamp(log: str, label: str, seconds: float, work: Path) -> dict:
    """Record [start, end] of a run in `log` (one file per run), write one file; entry: the label."""
    start = time.time()
    time.sleep(seconds)
    Path(log, f"{label}-{os.getpid()}-{start}").write_text(f"{start} {time.time()}")
    (work / "out.txt").write_text(label)
    return {"label": label}


def die_once(marker: str, work: Path) -> dict:
    """Killed by SIGKILL on its first run (the marker does not exist yet); fine on the second."""
    if not Path(marker).exists():
        Path(marker).write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return {"survived": True}


def always_die(marker: str, work: Path) -> dict:
    """Killed by SIGKILL once die_once's `marker` exists (at most 60 s later): when it broke the
    pool before die_once had run at all, die_once's retry alone would be its first run, and die."""
    deadline = time.monotonic() + 60
    while not Path(marker).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)


def fail(work: Path) -> dict:
    from edgekit.errors import ModelError

    raise ModelError("not a model", "m.keras")


def sleep_forever(folder: str, work: Path) -> dict:
    Path(folder, str(os.getpid())).write_text("")
    while True:
        time.sleep(0.1)


def pid(work: Path) -> dict:
    return {"pid": os.getpid()}
