"""The local executor: a pool of spawned worker processes on this machine (no server).

Workers die with the parent process (they watch its sentinel) and start with PYTHONHASHSEED=0
like the isolated compress worker. They ignore the terminal's Ctrl-C: the caller, interrupted, stops each with
SIGTERM (a busy one cleans up, an idle one exits) and kills it after the grace time. A worker
that dies (a segfault, a kill) breaks the pool: the tasks in flight are retried in a fresh pool,
each alone, and one that dies alone is reported failed. Tasks start largest first (`Task.cost`);
`share(obj)` pickles an object once into a file that each worker loads once (calibration
samples, validation feeds), instead of pickling it into every task.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import multiprocessing
import os
import pickle
import shutil
import signal
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from edgekit.errors import condense
from edgekit.executor.base import Outcome, Task, failure, run_task
from edgekit.procutil import die_with_parent_process, fixed_hash_seed, stop_process

_busy = [False]


def _on_sigterm(signum, frame):
    if _busy[0]:
        raise KeyboardInterrupt  # run_task removes its scratch directory
    os._exit(130)  # idle: nothing to clean up, and no traceback from the pool's loop


def _end_results(queue) -> None:
    """Close this process's end of a stopped pool's result pipe (`queue`: its _result_queue), the
    last writer once its workers are gone: a result that a stopped worker left half written then
    ends in EOF (the pool's manager thread sees a broken pool and ends) instead of a read that
    waits forever, which held the process at exit (concurrent.futures joins that thread)."""
    writer = getattr(queue, "_writer", None)
    if writer is not None and not writer.closed:
        writer.close()


def _init_worker() -> None:
    """A terminal's Ctrl-C goes to the caller, which stops the workers with SIGTERM."""
    die_with_parent_process()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)


_LOADED: dict[str, object] = {}  # in a worker: the shared objects it loaded last, by key
LOADED_KEEP = 4  # a search shares a few (its session, an evaluator or two); older ones are dropped


@dataclass(frozen=True)
class FileShared:
    """An object pickled once into `path` (see PoolExecutor.share)."""

    path: str
    key: str

    def get(self):
        if self.key not in _LOADED:
            while len(_LOADED) >= LOADED_KEEP:
                _LOADED.pop(next(iter(_LOADED)))
            with open(self.path, "rb") as f:
                _LOADED[self.key] = pickle.load(f)
        return _LOADED[self.key]


def _run(func, args):
    _busy[0] = True
    try:
        return run_task(func, args)
    finally:
        _busy[0] = False


class PoolExecutor:
    """Run tasks on `jobs` local worker processes [default: os.cpu_count()]."""

    name = "pool"

    def __init__(self, jobs: int | None = None):
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._shared_dir: str | None = None
        self._closed = False
        self._lock = threading.Lock()

    def share(self, obj) -> FileShared:
        """`obj` pickled once into a file the workers load (removed at close)."""
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        key = hashlib.sha256(data).hexdigest()
        self._shared_dir = self._shared_dir or tempfile.mkdtemp(prefix="edgekit-shared-")
        path = Path(self._shared_dir, key)
        if not path.exists():
            path.write_bytes(data)
        return FileShared(str(path), key)

    def _current_pool(self) -> cf.ProcessPoolExecutor:
        """The running pool, or a fresh one (maps may run at once, from a search's lanes)."""
        with self._lock:
            if self._closed:  # a lane's thread still mapping while the caller stops
                raise RuntimeError("the pool is closed")
            if self._pool is None:
                self._pool = cf.ProcessPoolExecutor(self.jobs, initializer=_init_worker,
                                                    mp_context=multiprocessing.get_context("spawn"))
            return self._pool

    def map(self, tasks: Iterable[Task], on_done: Callable[[Outcome], None] = lambda o: None) -> list[Outcome]:
        """Tasks that name the same resource (a device) never run at the same time."""
        tasks = list(tasks)
        outcomes: dict[int, Outcome] = {}
        waiting = sorted(range(len(tasks)), key=lambda i: -tasks[i].cost)  # largest first: no long tail
        running, busy = {}, set()  # future -> (task index, its pool)
        suspects: set[int] = set()  # in flight when a worker died: retried alone, one by one
        alone = None
        try:
            while waiting or running:
                for i in self._ready(tasks, waiting, running, busy, suspects):
                    pool = self._current_pool()
                    with fixed_hash_seed():  # workers are spawned on the first submits
                        running[pool.submit(_run, tasks[i].func, tasks[i].args)] = i, pool
                    busy |= set(tasks[i].resources)
                    waiting.remove(i)
                    alone = i if i in suspects else None
                done, _ = cf.wait(running, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    i, pool = running.pop(future)
                    busy -= set(tasks[i].resources)
                    outcome = self._outcome(tasks[i], future, pool, culprit=i == alone)
                    if outcome is None:
                        suspects.add(i)
                        waiting.append(i)
                        continue
                    suspects.discard(i)
                    outcomes[i] = outcome
                    on_done(outcome)
        except KeyboardInterrupt:
            self._shutdown(kill=True)
            raise
        return [outcomes[i] for i in range(len(tasks))]

    @staticmethod
    def _ready(tasks, waiting, running, busy, suspects) -> list[int]:
        """What to submit now: after a worker died, each suspect alone; else every waiting task
        whose resources are free."""
        if suspects & set(waiting):
            return [] if running else [min(suspects & set(waiting))]
        ready, taken = [], set(busy)
        for i in waiting:
            if not set(tasks[i].resources) & taken:
                ready.append(i)
                taken |= set(tasks[i].resources)
        return ready

    def _outcome(self, task: Task, future, pool, culprit: bool) -> Outcome | None:
        """The task's outcome, or None when a worker died while it ran beside others (it is then
        retried alone; dying alone, it is reported)."""
        try:
            return Outcome(task, result=future.result())
        except cf.process.BrokenProcessPool as err:
            with self._lock:
                if self._pool is pool:  # broken for good: the next submit starts a fresh one
                    self._pool = None
            if not culprit:
                return None
            return Outcome(task, error=f"the worker process died ({condense(str(err))}), also when "
                           "retried alone", exit_code=1)
        except Exception as err:  # noqa: BLE001 - reported per task, the others go on
            return failure(task, err)

    def _shutdown(self, kill: bool) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        results = getattr(pool, "_result_queue", None)  # shutdown() lets go of it
        pool.shutdown(wait=not kill, cancel_futures=True)
        if kill:
            stoppers = [threading.Thread(target=stop_process, args=(p, signal.SIGTERM)) for p in processes]
            for t in stoppers:
                t.start()
            for t in stoppers:
                t.join()
            _end_results(results)

    def close(self, kill: bool = False) -> None:
        self._closed = True
        self._shutdown(kill=kill)
        folder, self._shared_dir = self._shared_dir, None
        if folder:
            shutil.rmtree(folder, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(kill=exc[0] is not None)
