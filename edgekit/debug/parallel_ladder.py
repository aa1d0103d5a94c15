"""Ladder candidates measured in batches: serially on the backend itself, or on an executor.

`Candidates(backend, executor=None).measure(evaluator, [levels, ...])` returns one AccuracyReport
per precision map ({unit id: "int16" | "float"}), in order. With an executor (edgekit.executor)
and a backend that gives a picklable `recipe()` (`OnnxLadder.recipe()`), each candidate is a task
(`evaluate_levels`): the recipe and the evaluator are shared once per worker (`Executor.share`),
which opens the backend from the recipe once and keeps it for the next candidates; the reports
are the ones a serial run computes. `width` is how many candidates the
search may usefully ask for at once (1 serially, the executor's `jobs` otherwise [default 2]).
"""

from __future__ import annotations

import hashlib
from typing import Sequence

from edgekit.debug.scoring import Evaluator
from edgekit.executor import Task, entries, held


def evaluate_levels(shared, levels: tuple, work=None):
    """Runs in a worker: the AccuracyReport of the candidate `levels` ((unit, precision) pairs);
    shared: (ladder recipe, Evaluator)."""
    recipe, evaluator = shared.get()

    def open_():
        backend = recipe.open()
        return backend, backend.close

    backend = held(shared.key, open_)
    return evaluator.accuracy(backend, backend.build(dict(levels)))


class Candidates:
    """backend: the ladder backend (build, runner; recipe() for an executor); executor: an
    edgekit.executor Executor, or None [default] for serial measurements."""

    def __init__(self, backend, executor=None):
        self.backend = backend
        self.executor = executor if executor is not None and hasattr(backend, "recipe") else None
        self.width = max(1, int(getattr(self.executor, "jobs", 2))) if self.executor is not None else 1

    def measure(self, evaluator: Evaluator, candidates: Sequence[dict]) -> list:
        """One AccuracyReport per precision map in `candidates`, in order."""
        candidates = [dict(c) for c in candidates]
        if self.executor is None or len(candidates) < 2:
            return [evaluator.accuracy(self.backend, self.backend.build(c)) for c in candidates]
        shared = self.executor.share((self.backend.recipe(), evaluator))
        levels = [tuple(sorted(c.items())) for c in candidates]
        tasks = [Task(hashlib.sha256(f"{shared.key}:{lv}".encode()).hexdigest(), f"ladder candidate {i}",
                      evaluate_levels, (shared, lv))
                 for i, lv in enumerate(levels)]  # keyed by content: backend, samples and precisions
        return entries(self.executor.map(tasks), "ladder candidate")
