"""Ctrl-C always wins: SIGINT at a progress line exits 130 quickly and changes no output.

Synchronized on the progress lines the run prints (stderr), not on sleeps, so the tests do not
depend on the machine's load."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.fsutil import sha256_file
from tests.signals import interrupt_at, random_point, steps


def _files(out: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(out.iterdir()) if p.is_file()}


def _argv(model: Path, out: Path, precision: str) -> list[str]:
    return [sys.executable, "-m", "edgekit", "compress", str(model), f"--{precision}", "--out", str(out),
            "--no-cache", "--runs", "2"]


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
    code, took, err = interrupt_at(_argv(tiny_keras, out, "dynamic"), env, "running the float reference",
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
    code, took, err = interrupt_at(_argv(tiny_keras, out, "dynamic"), env, "writing report")
    assert took < 10
    if code == 130:
        assert _files(out) == before
    else:
        assert code == 0, err
        assert "model_dynamic.tflite" in _files(out)
    _no_leftovers(tmp_path)


@pytest.mark.slow
def test_sigint_at_20_random_points_of_a_compress(tiny_keras, tmp_path, previous_output):
    """20 SIGINTs at a random progress line plus a random part of the time to the next one: each
    run exits 130 within 10 s with the previous output, or (after its commit) 0 with the new one."""
    out, env, before = previous_output
    points = steps(_argv(tiny_keras, tmp_path / "timing", "dynamic"), env)
    rng = random.Random(14)
    outcomes = {130: 0, 0: 0}
    for _ in range(20):
        code, took, err = interrupt_at(_argv(tiny_keras, out, "dynamic"), env, *random_point(rng, points))
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
