"""Sensitivity candidates on an executor: each worker opens the selective backend once, then
builds and scores the float-node sets it is given (measure_sensitivity's `evaluate_many`).

`TfliteSession` is the picklable recipe of a TfliteSelective and its Evaluator; the calibration
samples travel as arrays. Results are the same AccuracyReports a serial run computes.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from edgekit.debug.scoring import Evaluator
from edgekit.errors import EdgekitError
from edgekit.executor import Task

_OPEN: dict[str, object] = {}  # in each worker process: session key -> open backend


@dataclass(frozen=True)
class TfliteSession:
    saved_dir: str
    calibration: list = field(repr=False)  # feeds dicts
    evaluator: Evaluator = field(repr=False)
    int8: Optional[object] = None
    layer_names: tuple = ()

    def open(self):
        from edgekit.backends.tflite.selective import TfliteSelective

        samples = self.calibration
        return TfliteSelective(Path(self.saved_dir), lambda: iter(samples), self.int8, list(self.layer_names))


def evaluate_candidate(session, key: str, float_nodes: tuple, work: Path):
    """Runs in a worker: the AccuracyReport of the model with `float_nodes` kept in float."""
    backend = _OPEN.get(key)
    if backend is None:
        for old in _OPEN.values():
            old.close()
        _OPEN.clear()
        backend = _OPEN[key] = session.open()
    return session.evaluator.accuracy(backend, backend.build(list(float_nodes)))


def on_executor(executor, session) -> callable:
    """An `evaluate_many` for measure_sensitivity that maps candidates over `executor`."""
    key = hashlib.sha256(pickle.dumps(session)).hexdigest()
    width = getattr(executor, "jobs", 2)

    def evaluate_many(float_sets):
        tasks = [Task(f"{key}:{i}", f"candidate {i}", evaluate_candidate, (session, key, tuple(s)))
                 for i, s in enumerate(float_sets)]
        outcomes = executor.map(tasks)
        failed = next((o for o in outcomes if o.result is None), None)
        if failed is not None:
            raise EdgekitError(f"a sensitivity candidate failed: {failed.error}")
        return [o.result.entry for o in outcomes]

    evaluate_many.width = width
    return evaluate_many
