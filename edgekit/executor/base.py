"""The executor protocol: tasks are pure functions of their arguments, keyed by a content hash.

A task's function is a module-level callable `func(*args, work=Path) -> dict`: it writes its files
into `work` (a fresh scratch directory on whichever machine runs it) and returns a JSON-able report
entry. `run_task` wraps it so that what comes back is a `TaskResult`: the entry plus the files'
bytes by relative path. Nothing depends on where a task ran, so a local pool and a Ray cluster
give byte-identical outputs; the caller writes the files into its own staging directory.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Iterable, Optional, Protocol

from edgekit.errors import EdgekitError, condense


@dataclasses.dataclass(frozen=True)
class Task:
    """One unit of work. key: content hash (the build cache key for a compress); resources: Ray
    custom resources it needs, e.g. {"device:pixel7": 1} (a local pool ignores them); cost: a
    relative size (largest start first, so no big task ends the run alone) [default 0]."""

    key: str
    name: str
    func: Callable
    args: tuple = ()
    resources: dict = dataclasses.field(default_factory=dict)
    cost: float = 0.0


@dataclasses.dataclass
class TaskResult:
    entry: dict
    files: dict[str, bytes]
    host: str = ""  # the node that ran it (hostname:pid for a pool, the Ray node id on Ray)


@dataclasses.dataclass
class Outcome:
    """A finished task: its result, or the reason it failed (error: one line; exit_code: the
    EdgekitError's, 1 for a crash)."""

    task: Task
    result: Optional[TaskResult] = None
    error: Optional[str] = None
    exit_code: int = 0


class Executor(Protocol):
    name: str

    def map(self, tasks: Iterable[Task], on_done: Callable[[Outcome], None] = lambda o: None) -> list[Outcome]:
        """Run every task; outcomes in the tasks' order. Ctrl-C stops every worker and re-raises."""

    def share(self, obj) -> "Shared":
        """`obj` stored once for every worker (not pickled into each task)."""

    def close(self) -> None: ...


class Shared(Protocol):
    """A handle to an object stored once by `Executor.share`; `get()` in a worker gives the object
    (loaded once per worker process)."""

    key: str

    def get(self): ...


def entries(outcomes: list[Outcome], what: str) -> list[dict]:
    """Each outcome's report entry, in order; the first failure raises EdgekitError("a WHAT failed: ...")."""
    failed = next((o for o in outcomes if o.result is None), None)
    if failed is not None:
        raise EdgekitError(f"a {what} failed: {failed.error}")
    return [o.result.entry for o in outcomes]


_HELD: dict[str, tuple] = {}  # in a worker process: key -> (the object opened for it, its cleanup)


def held(key: str, open_: Callable[[], tuple]):
    """In a worker: the object `open_()` -> (object, cleanup) gave for `key`, opened once; opening
    another key first runs the previous one's cleanup (one open backend per worker)."""
    if key not in _HELD:
        for _, cleanup in _HELD.values():
            cleanup()
        _HELD.clear()
        _HELD[key] = open_()
    return _HELD[key][0]


def collect_files(root: Path) -> dict[str, bytes]:
    """Every file under root by its relative POSIX path (sorted)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_task(func: Callable, args: tuple, host: str = "") -> TaskResult:
    """Run func(*args, work=...) in a fresh scratch directory; its files come back as bytes."""
    from edgekit.fsutil import work_dir

    with work_dir("edgekit-task-") as work:
        entry = func(*args, work=work)
        return TaskResult(entry, collect_files(work), host or f"{os.uname().nodename}:{os.getpid()}")


def failure(task: Task, err: BaseException) -> Outcome:
    """The Outcome of a task that raised: EdgekitErrors keep their exit code and line."""
    if isinstance(err, EdgekitError):
        return Outcome(task, error=condense(str(err)), exit_code=err.exit_code)
    return Outcome(task, error=f"{type(err).__name__}: {condense(str(err))}", exit_code=1)
