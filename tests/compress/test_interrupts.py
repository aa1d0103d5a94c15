"""Ctrl-C always wins: SIGINT at a progress line exits 130 quickly and changes no output.

Synchronized on the progress lines the run prints (stderr), not on sleeps, so the tests do not
depend on the machine's load."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgekit.fsutil import sha256_file

STEP_PREFIX = "edgekit: INFO: "


def _files(out: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(out.iterdir()) if p.is_file()}


def _argv(model: Path, out: Path, precision: str) -> list[str]:
    return [sys.executable, "-m", "edgekit", "compress", str(model), f"--{precision}", "--out", str(out),
            "--no-cache", "--runs", "2"]


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `cmd &` in a non-interactive shell does


def _interrupt_at(argv, env, step: str, delay: float = 0.0, inherit_ignored: bool = False):
    """Run argv; on the progress line `step` (+ delay s) send SIGINT to its process group, as a
    terminal's Ctrl-C does. Returns (exit code, seconds from the signal to the exit, stderr)."""
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ignore_sigint if inherit_ignored else None)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith(STEP_PREFIX) and line[len(STEP_PREFIX):].strip() == step:
            break
    else:
        proc.wait(timeout=60)
        pytest.fail(f"the run ended (exit {proc.returncode}) before the step '{step}':\n{''.join(lines)}")
    time.sleep(delay)
    sent = time.perf_counter()
    os.killpg(proc.pid, signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    return proc.returncode, time.perf_counter() - sent, "".join(lines) + rest


@pytest.fixture
def previous_output(tiny_keras, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, EDGEKIT_CACHE_DIR=str(tmp_path / "cache"))
    subprocess.run(_argv(tiny_keras, out, "fp16") + ["--quiet"], check=True, env=env, timeout=300)
    return out, env, _files(out)


def _no_leftovers(tmp_path: Path) -> None:
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".edgekit-")]


@pytest.mark.parametrize("inherit_ignored", [False, True], ids=["terminal", "background-job"])
def test_ctrl_c_exits_130_quickly_and_keeps_previous_output(tiny_keras, tmp_path, previous_output, inherit_ignored):
    """Also when the run starts with SIGINT ignored, as a background job of a CI shell does:
    Python then installs no Ctrl-C handler, and the run used to finish normally (exit 0)."""
    out, env, before = previous_output
    code, took, err = _interrupt_at(_argv(tiny_keras, out, "dynamic"), env, "running the float reference",
                                    inherit_ignored=inherit_ignored)
    assert code == 130, err
    assert took < 10
    assert "edgekit: interrupted" in err
    assert _files(out) == before
    _no_leftovers(tmp_path)


def test_ctrl_c_at_the_last_step_is_130_and_old_output_or_0_and_new(tiny_keras, tmp_path, previous_output):
    """At 'writing report' the worker is about to finish: the run ends either before its commit
    (130, previous output) or after it (0, new output); never by the signal (-2) or a mix."""
    out, env, before = previous_output
    code, took, err = _interrupt_at(_argv(tiny_keras, out, "dynamic"), env, "writing report")
    assert took < 10
    if code == 130:
        assert _files(out) == before
    else:
        assert code == 0, err
        assert "model_dynamic.tflite" in _files(out)
    _no_leftovers(tmp_path)


def _steps(argv, env) -> list[tuple[str, float]]:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    steps = [(line[len(STEP_PREFIX):].strip(), time.perf_counter() - start)
             for line in proc.stderr if line.startswith(STEP_PREFIX)]
    assert proc.wait(timeout=300) == 0
    return steps


@pytest.mark.slow
def test_sigint_at_20_random_points_of_a_compress(tiny_keras, tmp_path, previous_output):
    """20 SIGINTs at a random progress line plus a random part of the time to the next one: each
    run exits 130 within 10 s with the previous output, or (after its commit) 0 with the new one."""
    out, env, before = previous_output
    steps = _steps(_argv(tiny_keras, tmp_path / "timing", "dynamic"), env)
    rng = random.Random(14)
    outcomes = {130: 0, 0: 0}
    for _ in range(20):
        index = rng.randrange(len(steps))
        gap = (steps[index + 1][1] if index + 1 < len(steps) else steps[index][1] + 1.0) - steps[index][1]
        code, took, err = _interrupt_at(_argv(tiny_keras, out, "dynamic"), env, steps[index][0],
                                        rng.uniform(0, gap))
        assert took < 10, err
        assert code in outcomes, err
        outcomes[code] += 1
        if code == 0:  # completed before the signal: back to the previous output
            assert "model_dynamic.tflite" in _files(out)
            subprocess.run(_argv(tiny_keras, out, "fp16") + ["--quiet"], check=True, env=env, timeout=300)
            before = _files(out)
        assert _files(out) == before
        _no_leftovers(tmp_path)
    print(f"\nSIGINT at 20 random points: {outcomes[130]} exit 130 (previous output), "
          f"{outcomes[0]} after the commit (exit 0, new output)")
    assert outcomes[130] >= 15
