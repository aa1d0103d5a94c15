"""Executors: run pure, content-keyed tasks on a local process pool (default) or a Ray cluster.

`open_executor(jobs=None, ray=None)`: a `PoolExecutor` with `jobs` workers [default: the core
count], or a `RayExecutor` when `ray` is "auto" or a cluster address (needs `pip install
edgekit[ray]`). Both return the same `TaskResult`s, so a local and a Ray run give identical files.
"""

from __future__ import annotations

from edgekit.executor.base import Executor, Outcome, Task, TaskResult, collect_files, run_task


def open_executor(jobs: int | None = None, ray: str | None = None) -> Executor:
    """The executor the flags ask for (see the module docstring)."""
    if ray:
        from edgekit.executor.ray import RayExecutor

        return RayExecutor(ray)
    from edgekit.executor.pool import PoolExecutor

    return PoolExecutor(jobs)


__all__ = ["Executor", "Outcome", "Task", "TaskResult", "collect_files", "open_executor", "run_task"]
