"""`--jobs` on compress: the fallback search's candidates on a pool give the same result as in
process, the pool starts only when the search is long enough, and jobs is not in the cache key."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from edgekit.executor import LazyExecutor
from tests.conftest import DIGITS_DATA
from tests.debug.conftest import hostile_keras  # noqa: F401 - the fixture
from tests.signals import interrupt_at

RECIPE = "int8:\n  equalize: \"off\"\n  smooth: \"off\"\n"  # either alone may fix the planted pair: search instead


def _timeless(step: dict) -> dict:
    return {k: v for k, v in step.items() if k not in ("elapsed_s", "latency_p50_ms")}


def fallback_of(out) -> tuple:
    """(met, float layers, steps without timings, INT8 model bytes) of a compress OUT."""
    report = json.loads((out / "report.json").read_text())
    fallback = next(a for a in report["artifacts"] if a["precision"] == "int8")["details"]["fallback"]
    return (fallback["met"], fallback["float_layers"], [_timeless(s) for s in fallback["steps"]],
            (out / "model_int8.tflite").read_bytes())


@pytest.mark.slow  # two compresses of the hostile CNN, one with a pool of 1 worker beside it: ~60 s
def test_compress_jobs_2_equals_jobs_1(hostile_keras, tmp_path, edgekit_cli, monkeypatch):  # noqa: F811
    monkeypatch.setenv("EDGEKIT_PARALLEL_MIN_S", "0")  # the pool even for this short search,
    monkeypatch.setenv("EDGEKIT_WAIT_FOR_WORKERS", "1")  # measuring from the first candidates on
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    runs = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        result = edgekit_cli("compress", hostile_keras, "--int8", "-c", DIGITS_DATA, "--color", "grayscale",
                             "-t", "tflite", "--max-accuracy-drop", "1.0", "--out", out, "--runs", "2",
                             "--no-cache", "--recipe", recipe, "--jobs", jobs)
        assert result.code == 0, result.err
        assert ("sensitivity candidates here and on the pool (1 worker)" in result.err) == (jobs == 2), result.err
        assert ("fallback builds here and on the pool too" in result.err) == (jobs == 2), result.err
        runs[jobs] = fallback_of(out)
    assert runs[2] == runs[1]
    assert runs[1][0] and runs[1][1] and len(runs[1][2]) >= 2  # met, with layers in float


class _Slow:
    """A backend whose every build takes `seconds` (what the decision times)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def nodes(self):
        return list(range(3))

    def build(self, float_nodes=()):
        time.sleep(self.seconds)
        return bytes(len(float_nodes))


class _Evaluator:
    def accuracy(self, backend, model):
        return len(model)  # the candidate's float-node count


class _Ladder(_Slow):
    """A ladder backend whose candidates build in no time."""

    def __init__(self):
        super().__init__(0.0)

    def build(self, levels=None):
        return bytes(len(levels or {}))

    def recipe(self):
        return "no recipe: the workers are never asked to measure"


def test_a_short_search_stays_in_process_and_jobs_1_never_pools(monkeypatch):
    from edgekit.debug.parallel import evaluate_many, ladder_executor
    from edgekit.debug.parallel_ladder import Candidates

    monkeypatch.setenv("EDGEKIT_PARALLEL_MIN_S", "60")
    for jobs in (1, 2):
        with LazyExecutor(jobs) as executor:
            many = evaluate_many(_Slow(0.01), _Evaluator(), executor)
            assert many([[1], [1, 2], []]) == [1, 2, 0]
            assert executor._inner is None  # no worker was started
    assert not LazyExecutor(1).parallel and LazyExecutor(2).parallel and LazyExecutor(1, "auto").parallel
    # the ladder: workers from the first candidate on when asked for (--jobs 2), else only once it
    # has measured for EDGEKIT_PARALLEL_MIN_S here; --jobs 1 never
    assert ladder_executor(LazyExecutor(1)) is None and ladder_executor(LazyExecutor(None, "auto")) is not None
    for jobs, starts in ((None, False), (2, True)):
        with LazyExecutor(jobs) as executor:
            candidates = Candidates(_Ladder(), ladder_executor(executor))
            assert candidates.measure(_Evaluator(), [{"a": "int16"}, {}]) == [1, 0]
            assert (executor._inner is not None) == starts, jobs
            candidates.lanes.wait_ready(300)


def test_jobs_is_not_in_the_build_cache_key(tiny_keras):
    import dataclasses

    from edgekit.model.checks import check_model_path
    from edgekit.pipeline.compress import CompressJob, build_key
    from edgekit.recipe.schema import Recipe

    job = CompressJob(check_model_path(tiny_keras), tiny_keras.parent / "out", Recipe(), "default", False, ["tflite"])
    assert build_key(dataclasses.replace(job, jobs=4, ray="auto")) == build_key(job)


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [state, ppid, pgrp, ...] ([] when gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _alive(pid: int) -> bool:
    return _stat(pid)[:1] not in ([], ["Z"])


def _group(pgid: int) -> list[int]:
    """Live processes of the process group `pgid`."""
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [pid for pid in pids if _alive(pid) and _stat(pid)[2:3] == [str(pgid)]]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.slow  # a compress of the hostile CNN up to its search: ~30 s
def test_ctrl_c_during_a_pooled_search_exits_130_and_stops_the_workers(hostile_keras, tmp_path):  # noqa: F811
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    argv = [sys.executable, "-m", "edgekit", "compress", str(hostile_keras), "--int8", "-c", str(DIGITS_DATA),
            "--color", "grayscale", "-t", "tflite", "--max-accuracy-drop", "1.0", "--out", str(tmp_path / "out"),
            "--runs", "2", "--no-cache", "--recipe", str(recipe), "--jobs", "3"]
    env = dict(os.environ, EDGEKIT_PARALLEL_MIN_S="0", EDGEKIT_WAIT_FOR_WORKERS="1",
               EDGEKIT_CACHE_DIR=str(tmp_path / "cache"))
    seen = []

    def workers_up(pgid):  # spawned: the compress's isolated worker and the pool's 2 workers
        seen[:] = [pid for pid in _group(pgid) if b"spawn_main" in _cmdline(pid)]
        return len(seen) >= 3

    code, took, err = interrupt_at(argv, env, "sensitivity candidates here and on the pool (2 workers)", delay=0.5,
                                   until=workers_up)
    assert len(seen) >= 3, seen
    assert code == 130, err
    assert took < 10 and "edgekit: interrupted" in err
    assert not (tmp_path / "out").exists()
    deadline = time.monotonic() + 5
    while [pid for pid in seen if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in seen if _alive(pid)] == []  # the pool's workers were stopped too


@pytest.mark.slow  # two debug runs of the hostile CNN on the ONNX target, one with a pool: ~60 s
def test_debug_onnx_ranking_on_a_pool_equals_in_process(hostile_keras, tmp_path, edgekit_cli, monkeypatch):  # noqa: F811
    monkeypatch.setenv("EDGEKIT_PARALLEL_MIN_S", "0")
    monkeypatch.setenv("EDGEKIT_WAIT_FOR_WORKERS", "1")
    rankings = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        result = edgekit_cli("debug", hostile_keras, "-c", DIGITS_DATA, "--color", "grayscale", "-t", "onnx",
                             "--out", out, "--jobs", jobs)
        assert result.code == 0, result.err
        assert ("sensitivity candidates here and on the pool (1 worker)" in result.err) == (jobs == 2), result.err
        # tf2onnx numbers node names by a per-process counter (Conv__27, then Conv__65 in a second
        # export in this process): the graph index names the node
        rankings[jobs] = [{k: v for k, v in r.items() if k not in ("node", "layer")}
                          for r in json.loads((out / "debug.json").read_text())["ranking"]]
    assert rankings[2] == rankings[1] and len(rankings[1]) >= 5


def test_a_search_executor_is_the_caller_and_its_workers(monkeypatch):
    """--jobs N: this process and a pool of N - 1 workers; --ray: this process and the cluster's CPUs."""
    import edgekit.executor as executor_module

    opened = []

    class _Opened:
        jobs = 4

        def close(self):
            pass

    monkeypatch.setattr(executor_module, "open_executor", lambda jobs, ray: opened.append((jobs, ray)) or _Opened())
    assert LazyExecutor(3).workers == 2 and LazyExecutor(3).jobs == 3 and opened == []  # nothing opened yet
    LazyExecutor(3).open()
    on_ray = LazyExecutor(None, "auto")
    assert (on_ray.workers, on_ray.jobs) == (4, 5)
    assert opened == [(2, None), (None, "auto")]
