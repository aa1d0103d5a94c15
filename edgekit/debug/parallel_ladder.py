"""Ladder candidates measured in batches: serially on the backend itself, or on an executor.

`Candidates(backend, executor=None).measure(evaluator, [levels, ...])` returns one AccuracyReport
per precision map ({unit id: "int16" | "float"}), in order. With an executor (edgekit.executor)
and a backend that gives a picklable `recipe()` (`OnnxLadder.recipe()`), each candidate is a task
(`evaluate_levels`): a worker opens the backend from the recipe once and keeps it for the next
candidates; the reports are the ones a serial run computes. `width` is how many candidates the
search may usefully ask for at once (1 serially, the executor's `jobs` otherwise [default 2]).
"""

from __future__ import annotations

import hashlib
import pickle
from typing import Sequence

from edgekit.debug.scoring import Evaluator
from edgekit.errors import EdgekitError
from edgekit.executor import Task

_OPEN: dict[str, object] = {}  # in each worker process: recipe key -> open ladder backend


def evaluate_levels(recipe, key: str, evaluator: Evaluator, levels: tuple, work=None):
    """Runs in a worker: the AccuracyReport of the candidate `levels` ((unit, precision) pairs)."""
    backend = _OPEN.get(key)
    if backend is None:
        for old in _OPEN.values():
            old.close()
        _OPEN.clear()
        backend = _OPEN[key] = recipe.open()
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
        recipe = self.backend.recipe()
        key = hashlib.sha256(pickle.dumps(recipe)).hexdigest()
        levels = [tuple(sorted(c.items())) for c in candidates]
        tasks = [Task(hashlib.sha256(pickle.dumps((key, evaluator.feeds, lv))).hexdigest(), f"ladder candidate {i}",
                      evaluate_levels, (recipe, key, evaluator, lv))
                 for i, lv in enumerate(levels)]  # keyed by content: backend, samples and precisions
        outcomes = self.executor.map(tasks)
        failed = next((o for o in outcomes if o.result is None), None)
        if failed is not None:
            raise EdgekitError(f"a ladder candidate failed: {failed.error}")
        return [o.result.entry for o in outcomes]
