"""Executors: run pure, content-keyed tasks on a local process pool (default) or a Ray cluster.

`open_executor(jobs=None, ray=None)`: a `PoolExecutor` with `jobs` workers [default: the core
count], or a `RayExecutor` when `ray` is "auto" or a cluster address (needs `pip install
edgekit[ray]`). Both return the same `TaskResult`s, so a local and a Ray run give identical files.
`LazyExecutor(jobs, ray)` opens that executor only when a search first needs it, for a search whose
caller measures too (`edgekit.executor.lanes`): `jobs` lanes are the caller and jobs - 1 workers.
"""

from __future__ import annotations

import os

from edgekit.executor.base import (Executor, Outcome, Shared, Task, TaskResult, collect_files, entries, held,
                                   run_task)


def open_executor(jobs: int | None = None, ray: str | None = None) -> Executor:
    """The executor the flags ask for (see the module docstring)."""
    if ray:
        from edgekit.executor.ray import RayExecutor

        return RayExecutor(ray)
    from edgekit.executor.pool import PoolExecutor

    return PoolExecutor(jobs)


def workers_of(executor) -> int:
    """How many tasks `executor` runs at once (a LazyExecutor's workers, else its jobs)."""
    return int(getattr(executor, "workers", None) or getattr(executor, "jobs", 1) or 1)


class LazyExecutor:
    """The executor of a search whose caller is one of its `jobs` lanes [default: the core count]:
    a pool of jobs - 1 workers (`open_executor(jobs - 1)`), or Ray, opened on the first `map`/`share`
    (a search that stays in this process starts no worker). `parallel`: False for jobs == 1
    without Ray (callers then stay serial in-process). Closing kills the workers when an exception
    (Ctrl-C) is on its way."""

    def __init__(self, jobs: int | None = None, ray: str | None = None):
        self.requested, self.ray = jobs, ray
        self._inner: Executor | None = None

    @property
    def parallel(self) -> bool:
        return bool(self.ray) or (self.requested or os.cpu_count() or 1) > 1

    @property
    def asked(self) -> bool:
        """True when the user asked for workers (--jobs N > 1 or --ray), not just by the default."""
        return bool(self.ray) or (self.requested or 1) > 1

    @property
    def name(self) -> str:
        return "ray" if self.ray else "pool"

    @property
    def jobs(self) -> int:
        """Lanes: the caller and the workers."""
        return self.workers + 1

    @property
    def workers(self) -> int:
        """Tasks the executor runs at once (on Ray: the cluster's CPUs, which opens the executor)."""
        return self.open().jobs if self.ray else max(1, (self.requested or os.cpu_count() or 1) - 1)

    def open(self) -> Executor:
        if self._inner is None:
            self._inner = open_executor(None if self.ray else self.workers, self.ray)
        return self._inner

    def map(self, tasks, on_done=lambda o: None):
        return self.open().map(tasks, on_done)

    def share(self, obj) -> Shared:
        return self.open().share(obj)

    def close(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.__exit__(*exc)


__all__ = ["Executor", "LazyExecutor", "Outcome", "Shared", "Task", "TaskResult", "collect_files", "entries",
           "held", "open_executor", "run_task", "workers_of"]
