"""Ladder candidates measured in batches: serially on the backend itself, or on an executor.

`Candidates(backend, executor=None).measure(evaluator, [levels, ...])` returns one AccuracyReport
per precision map ({unit id: "int16" | "float"}), in order. With an executor (edgekit.executor)
and a backend that gives a picklable `recipe()` (`OnnxLadder.recipe()`), each candidate is a task
(`evaluate_levels`): the recipe and the evaluator are shared once per worker (`Executor.share`),
which opens the backend from the recipe once and keeps it for the next candidates; this process
measures candidates too, alone until the workers have opened it (`edgekit.executor.lanes`); the
reports are the ones a serial run computes. `width` is how many candidates the search may usefully
ask for at once (1 serially or while the workers start, then workers + 1).
"""

from __future__ import annotations

import time
from typing import Sequence

from edgekit.debug.parallel import min_seconds
from edgekit.debug.scoring import Evaluator
from edgekit.executor import held, workers_of
from edgekit.executor.lanes import Lanes


def _open_ladder(shared):
    recipe, evaluator = shared.get()

    def open_():
        backend = recipe.open()
        return backend, backend.close

    return evaluator, held(f"ladder {recipe!r}", open_)  # the same backend for any evaluator


def open_ladder(shared, work=None) -> dict:
    """Runs in a worker: opens the ladder backend of `shared` for the next candidates."""
    _open_ladder(shared)
    return {}


def evaluate_levels(shared, levels: tuple, work=None):
    """Runs in a worker: the AccuracyReport of the candidate `levels` ((unit, precision) pairs);
    shared: (ladder recipe, Evaluator)."""
    evaluator, backend = _open_ladder(shared)
    return evaluator.accuracy(backend, backend.build(dict(levels)))


class Candidates:
    """backend: the ladder backend (build, runner; recipe() for an executor); executor: an
    edgekit.executor Executor, or None [default] for serial measurements. The workers start with
    the first candidate when the user asked for them (`executor.asked`: --jobs N > 1, --ray), else
    once this process has measured for min_seconds() (20 s): a short search starts none."""

    def __init__(self, backend, executor=None):
        self.backend = backend
        self.executor = executor if executor is not None and hasattr(backend, "recipe") else None
        self.lanes = Lanes(self.executor, workers_of(self.executor)) if self.executor is not None else None
        self.warm_after = 0.0 if getattr(executor, "asked", True) else min_seconds()
        self.local_seconds = 0.0

    @property
    def width(self) -> int:
        return self.lanes.width if self.lanes is not None else 1

    def measure(self, evaluator: Evaluator, candidates: Sequence[dict]) -> list:
        """One AccuracyReport per precision map in `candidates`, in order."""
        candidates = [dict(c) for c in candidates]

        def local(levels: dict):
            start = time.monotonic()
            try:
                return evaluator.accuracy(self.backend, self.backend.build(levels))
            finally:
                self.local_seconds += time.monotonic() - start

        if self.lanes is None or self.local_seconds < self.warm_after:
            return [local(c) for c in candidates]
        shared = self.executor.share((self.backend.recipe(), evaluator))
        self.lanes.warm_up(open_ladder, shared)  # from the first candidate on

        def remote(batch: list) -> list:
            return self.lanes.on_workers("ladder candidate", evaluate_levels,
                                         [(shared, tuple(sorted(c.items()))) for c in batch])

        return self.lanes.map(candidates, local, remote)
