"""Interrupting a CLI run at a progress line (stderr), as a terminal's Ctrl-C does."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

STEP_PREFIX = "edgekit: INFO: "


def ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `cmd &` in a non-interactive shell does


def interrupt_at(argv, env, step: str, delay: float = 0.0, inherit_ignored: bool = False, until=None):
    """Run argv; on the progress line `step` (then until(pgid) is true, polled for up to 60 s, then
    delay s) send SIGINT to its process group, as a terminal's Ctrl-C does. Returns (exit code,
    seconds from the signal to the exit, stderr)."""
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ignore_sigint if inherit_ignored else None)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith(STEP_PREFIX) and line[len(STEP_PREFIX):].strip() == step:
            break
    else:
        proc.wait(timeout=60)
        pytest.fail(f"the run ended (exit {proc.returncode}) before the step '{step}':\n{''.join(lines)}")
    deadline = time.monotonic() + 60
    while until is not None and not until(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(delay)
    sent = time.perf_counter()
    os.killpg(proc.pid, signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    return proc.returncode, time.perf_counter() - sent, "".join(lines) + rest


def steps(argv, env) -> list[tuple[str, float]]:
    """The progress lines of a complete run of argv, with their seconds from its start."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    steps = [(line[len(STEP_PREFIX):].strip(), time.perf_counter() - start)
             for line in proc.stderr if line.startswith(STEP_PREFIX)]
    assert proc.wait(timeout=300) == 0
    return steps


def random_point(rng, points: list[tuple[str, float]]) -> tuple[str, float]:
    """A random progress line of `points` and a delay: a random part of the time to the next one."""
    index = rng.randrange(len(points))
    after = points[index + 1][1] if index + 1 < len(points) else points[index][1] + 1.0
    return points[index][0], rng.uniform(0, after - points[index][1])
