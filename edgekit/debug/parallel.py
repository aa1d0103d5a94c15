"""Sensitivity candidates on an executor: each worker opens the selective backend once, then
builds and scores the float-node sets it is given (measure_sensitivity's `evaluate_many`).

`evaluate_many(backend, evaluator, executor, calibration)` is what the searches use: serial in
this process unless the executor is parallel, the backend can be reopened in a worker
(`session_of`: TFLite and ONNX selective builders) and the candidates would take at least
PARALLEL_MIN_SECONDS serially (timed on the first one; the environment variable
EDGEKIT_PARALLEL_MIN_S overrides it [default 20 s]: a worker first imports its framework and
calibrates). This process measures candidates too, alone until the workers are ready
(`edgekit.executor.lanes`). The session (calibration samples, validation feeds) is shared once per
worker, not pickled into each task; results are the same AccuracyReports a serial run computes.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from edgekit.debug.scoring import Evaluator
from edgekit.debug.sensitivity import serial
from edgekit.executor import held, workers_of
from edgekit.executor.lanes import Lanes

log = logging.getLogger("edgekit")
PARALLEL_MIN_SECONDS = 20.0
BATCH_PER_WORKER = 4  # nodes per worker between two deadline checks


@dataclass(frozen=True)
class TfliteSession:
    saved_dir: str
    calibration: list = field(repr=False)  # feeds dicts
    evaluator: Evaluator = field(repr=False)
    int8: Optional[object] = None
    layer_names: tuple = ()

    def open(self, folder: Path):
        from edgekit.backends.tflite.selective import TfliteSelective

        samples = self.calibration
        return TfliteSelective(Path(self.saved_dir), lambda: iter(samples), self.int8, list(self.layer_names))


@dataclass(frozen=True)
class OnnxSession:
    """An OnnxSelective or a subclass of it (`kind`: TensorRT's) over the same QDQ builder."""

    kind: type
    fp32_path: str
    calibration: list = field(repr=False)
    evaluator: Evaluator = field(repr=False)
    options: dict = field(default_factory=dict)
    layer_names: tuple = ()

    def open(self, folder: Path):
        """Over a copy of the model in `folder` (this worker's): onnxruntime writes
        '<stem>-inferred.onnx' beside its input, so two workers on one file collide."""
        samples = self.calibration
        return self.kind(_copy_model(Path(self.fp32_path), folder), lambda: iter(samples), list(self.layer_names),
                         options=self.options)


def _copy_model(path: Path, folder: Path) -> Path:
    """The ONNX model and its external data files copied into `folder`."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, folder / path.name)
    for tensor in onnx.load(str(path), load_external_data=False).graph.initializer:
        location = next((e.value for e in tensor.external_data if e.key == "location"), None)
        if location and not (folder / location).exists():
            (folder / location).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path.parent / location, folder / location)
    return folder / path.name


def _worker_dir(shared, key: str) -> Path:
    """This worker's directory for a session: beside the pool's shared file (removed with it when
    the pool closes), else under the temp directory."""
    base = Path(shared.path).parent if hasattr(shared, "path") else Path(tempfile.gettempdir())
    return base / f"edgekit-worker-{os.getpid()}-{key[:16]}"


def session_of(backend, calibration, evaluator: Evaluator):
    """The picklable recipe that reopens `backend` in a worker (calibration: the factory it was
    calibrated with), or None for a backend that cannot be reopened."""
    from edgekit.backends.onnx.selective import OnnxSelective
    from edgekit.backends.tflite.selective import TfliteSelective

    names = tuple(getattr(backend, "_layer_names", ()))
    if isinstance(backend, TfliteSelective) and calibration is not None:
        return TfliteSession(str(backend.saved_dir), list(calibration()), evaluator, backend.int8, names)
    if isinstance(backend, OnnxSelective) and backend.calibration is not None:
        return OnnxSession(type(backend), str(backend.fp32_path), list(backend.calibration()), evaluator,
                           dict(backend.options), names)
    return None


def _open_backend(shared):
    """This worker's backend for the shared session, opened once."""
    session = shared.get()

    def open_():
        folder = _worker_dir(shared, shared.key)
        backend = session.open(folder)
        return backend, lambda: (backend.close(), shutil.rmtree(folder, ignore_errors=True))

    return session, held(shared.key, open_)


def open_session(shared, work: Path) -> dict:
    """Runs in a worker: opens (calibrates) the session's backend for the next candidates."""
    _open_backend(shared)
    return {}


def evaluate_candidate(shared, float_nodes: tuple, work: Path):
    """Runs in a worker: the AccuracyReport of the model with `float_nodes` kept in float."""
    session, backend = _open_backend(shared)
    return session.evaluator.accuracy(backend, backend.build(list(float_nodes)))


def build_candidate(shared, float_nodes: tuple, evaluator, work: Path) -> tuple:
    """Runs in a worker: (model bytes, AccuracyReport on the shared `evaluator`) of the model with
    `float_nodes` kept in float."""
    _, backend = _open_backend(shared)
    model = backend.build(list(float_nodes))
    return model, evaluator.get().accuracy(backend, model)


class OnExecutor:
    """An `evaluate_many` for measure_sensitivity: this process (`local`, an evaluate_many over the
    caller's own backend) and the executor's workers measure the candidates together (Lanes);
    the workers open `session` in the background first. `builds(evaluator)`: the same lanes
    building and scoring float-node sets on another evaluator (the search's greedy and prune)."""

    def __init__(self, executor, session, local, backend=None):
        self.executor, self.local, self.backend = executor, local, backend
        self.shared = executor.share(session)
        self.lanes = Lanes(executor, workers_of(executor))
        self.lanes.warm_up(open_session, self.shared)

    @property
    def width(self) -> int:
        return BATCH_PER_WORKER * self.lanes.width

    def __call__(self, float_sets):
        return self.lanes.map(float_sets, lambda s: self.local([s])[0], self._remote)

    def _remote(self, float_sets) -> list:
        return self.lanes.on_workers("sensitivity candidate", evaluate_candidate,
                                     [(self.shared, tuple(s)) for s in float_sets])

    def builds(self, evaluator: Evaluator):
        """build_many(float_sets) -> [(model bytes, AccuracyReport on `evaluator`)], in order, with
        `width`; None without this process's backend."""
        if self.backend is None:
            return None
        log.info("fallback builds here and on the %s too", self.executor.name)
        return _Builds(self, evaluator)


class _Builds:
    def __init__(self, on: OnExecutor, evaluator: Evaluator):
        self.on, self.evaluator = on, evaluator
        self.shared_evaluator = on.executor.share(evaluator)

    @property
    def width(self) -> int:
        return self.on.lanes.width

    def _local(self, float_set):
        model = self.on.backend.build(list(float_set))
        return model, self.evaluator.accuracy(self.on.backend, model)

    def _remote(self, float_sets) -> list:
        return self.on.lanes.on_workers("fallback candidate", build_candidate,
                                        [(self.on.shared, tuple(s), self.shared_evaluator) for s in float_sets])

    def __call__(self, float_sets) -> list:
        return self.on.lanes.map(float_sets, self._local, self._remote)


def min_seconds() -> float:
    """PARALLEL_MIN_SECONDS, or EDGEKIT_PARALLEL_MIN_S when set."""
    return float(os.environ.get("EDGEKIT_PARALLEL_MIN_S", PARALLEL_MIN_SECONDS))


class _Adaptive:
    """The first candidate here, timed; the rest here or with workers too (see evaluate_many)."""

    def __init__(self, backend, evaluator, executor, calibration):
        self.backend, self.evaluator, self.executor, self.calibration = backend, evaluator, executor, calibration
        self.local = serial(backend, evaluator)
        self.chosen = None

    @property
    def width(self) -> int:
        return self.chosen.width if self.chosen is not None else 1

    def builds(self, evaluator: Evaluator):
        """The workers' `builds` when the ranking went to them, else None (serial)."""
        return self.chosen.builds(evaluator) if isinstance(self.chosen, OnExecutor) else None

    def __call__(self, float_sets):
        if self.chosen is not None:
            return self.chosen(float_sets)
        start = time.monotonic()
        first = self.local(float_sets[:1])
        estimate = (time.monotonic() - start) * (2 * len(self.backend.nodes()) - 1)
        session = session_of(self.backend, self.calibration, self.evaluator) if estimate >= min_seconds() else None
        if session is None:
            self.chosen = self.local
            log.info("sensitivity candidates in this process (about %.0f s serially: no %s)", estimate,
                     "workers for this backend" if estimate >= min_seconds() else f"pool below {min_seconds():g} s")
        else:
            self.chosen = OnExecutor(self.executor, session, self.local, self.backend)
            workers = workers_of(self.executor)
            log.info("sensitivity candidates here and on the %s (%d worker%s)", self.executor.name, workers,
                     "s" * (workers != 1))
        return first + (self.chosen(float_sets[1:]) if len(float_sets) > 1 else [])


def evaluate_many(backend, evaluator: Evaluator, executor=None, calibration=None):
    """measure_sensitivity's `evaluate_many` for `backend` (see the module docstring): the first
    candidate runs here and is timed; the rest go to this process and `executor`'s workers
    together when worth it."""
    if executor is None or not getattr(executor, "parallel", True):
        return serial(backend, evaluator)
    return _Adaptive(backend, evaluator, executor, calibration)


def ladder_executor(executor):
    """The executor for the precision ladder's candidates (None: serial, for --jobs 1)."""
    return executor if executor is not None and getattr(executor, "parallel", True) else None
