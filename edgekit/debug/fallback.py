"""Accuracy-aware float fallback: the smallest set of layers kept in float that meets a budget.

Strategy (greedy by measured sensitivity, then a prune pass):
1. build full INT8 and validate it; if it meets the budget, stop (no float layers);
2. rank the quantizable nodes by measured sensitivity (`sensitivity.measure_sensitivity` on the
   first SENSITIVITY_SAMPLES (32) held-out samples, given at most half the time budget; nodes it
   did not reach rank last, in graph order);
3. greedy: keep the next most sensitive node in float, rebuild, re-validate, until the budget is
   met (and, given `confirm` samples, holds on them) or `max_float_layers` (default 10) nodes are float (when the ranking ran on workers, the
   next few prefixes are built and scored at once, by this process and the workers: the steps
   recorded are the serial run's, up to the first that meets);
4. prune: try dropping each float node again, least sensitive first, and keep it quantized when
   the budget still holds, so the final set is minimal (no single node can be removed). When the
   greedy pass ended short of the budget, a drop is kept when it is no further from the budget:
   quantization errors interact (on a real MobileNetV3, floating the 3rd-ranked node on top of
   the first two cost 6 dB), so the best point may need fewer float layers than the greedy set.
   The next few drops are tried at once the same way, up to the first kept one.
Every build is a recorded step (float layers, accuracy, size, host latency). The search stops at
`time_budget_s` (default 600 s) with the best point so far. When the budget is not met,
`FallbackResult.met` is False and `best` is the step closest to it (smallest shortfall, then
fewest float layers); `raise_if_unmet` turns that into GateFailed (exit code 10). Given `confirm`
samples, a met step counts only when it meets the budget on them too (`edgekit.debug.confirm`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence


from edgekit.debug.confirm import SHOWN, Confirmer, outcome, passed, shortfall
from edgekit.debug.scoring import Budget, Evaluator
from edgekit.debug.sensitivity import NodeSensitivity, measure_sensitivity
from edgekit.errors import GateFailed

SENSITIVITY_SAMPLES = 32  # a ranking is relative: a subset of the held-out samples is enough


@dataclass
class Step:
    """One built and validated model in the search."""

    phase: str  # baseline | greedy | prune
    float_nodes: list[str]
    float_layers: list[str]
    accuracy: dict
    bytes: int
    latency_p50_ms: Optional[float]
    met: bool
    shortfall: float
    elapsed_s: float
    quantization: dict = field(default_factory=dict)  # the quantizer settings of this build
    precisions: dict = field(default_factory=dict)  # precision ladder: unit -> groups | int16 | float (the rest W8A8)
    confirmation: Optional[dict] = None  # measured on the held-out samples the search did not use (`confirm`)

    def to_dict(self) -> dict:
        return dict(vars(self))


@dataclass
class FallbackResult:
    """The search: every step, the chosen step (met) or the best one (not met), its model bytes."""

    budget: Budget
    strategy: str
    steps: list[Step]
    best: Step
    met: bool
    model: bytes
    ranking: list[NodeSensitivity] = field(default_factory=list)
    stopped: str = ""  # why the search ended
    confirmation: Optional[dict] = None  # search/confirmation sample counts (`confirm.Confirmer.record`)

    @property
    def float_nodes(self) -> list[str]:
        return self.best.float_nodes

    @property
    def float_layers(self) -> list[str]:
        return self.best.float_layers

    def to_dict(self) -> dict:
        return {
            "budget": {k: v for k, v in vars(self.budget).items() if v is not None},
            "budget_text": self.budget.describe(),
            "strategy": self.strategy,
            "met": self.met,
            "stopped": self.stopped,
            "float_nodes": self.float_nodes,
            "float_layers": self.float_layers,
            "final": self.best.to_dict(),
            "steps": [s.to_dict() for s in self.steps],
            "ranking": [r.to_dict() for r in self.ranking],
            "confirmation": self.confirmation,
        }


STRATEGY = "greedy by measured sensitivity, then prune"


class _Search:
    def __init__(self, backend, evaluator: Evaluator, budget: Budget, deadline: float, measure_latency: bool,
                 on_step: Callable[[str], None]):
        self.backend, self.evaluator, self.budget = backend, evaluator, budget
        self.deadline, self.measure_latency, self.on_step = deadline, measure_latency, on_step
        self.start = time.monotonic()
        self.steps: list[Step] = []
        self.models: dict[tuple, bytes] = {}
        self.labels = {n.id: n.layer for n in backend.nodes()}

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline

    def try_set(self, phase: str, float_nodes: Sequence[str]) -> Step:
        return self.try_first(phase, [list(float_nodes)], None, lambda step: True)[0]

    def try_first(self, phase: str, sets: list[list[str]], builds, done: Callable[[Step], bool]) -> list[Step]:
        """Steps for `sets` in order up to the first that is `done` (inclusive), as a serial run
        records them; `builds` (edgekit.debug.parallel): measures `width` of them at once
        [default None: one at a time here]."""
        width = builds.width if builds is not None else 1
        steps: list[Step] = []
        for start in range(0, len(sets), width):
            batch = sets[start:start + width]
            for float_nodes in batch:
                self.on_step(f"fallback {phase}: {len(float_nodes)} float layer(s)")
            measured = builds(batch) if width > 1 else [self._measure(batch[0])]
            for float_nodes, (model, acc) in zip(batch, measured):
                steps.append(self.record(phase, float_nodes, model, acc))
                if done(steps[-1]):
                    return steps
        return steps

    def _measure(self, float_nodes: Sequence[str]) -> tuple:
        model = self.backend.build(list(float_nodes))
        return model, self.evaluator.accuracy(self.backend, model)

    def record(self, phase: str, float_nodes: Sequence[str], model: bytes, acc) -> Step:
        latency = self.evaluator.latency(self.backend, model).p50_ms if self.measure_latency else None
        step = Step(phase, list(float_nodes), [self.labels[n] for n in float_nodes],
                    acc.model_dump(mode="json"), len(model), latency, self.budget.met(acc),
                    self.budget.shortfall(acc), round(time.monotonic() - self.start, 3),
                    self.backend.quantization(list(float_nodes)))
        self.steps.append(step)
        self.models[tuple(float_nodes)] = model
        return step

    def best(self) -> Step:
        met = [s for s in self.steps if passed(s)]
        if met:
            return min(met, key=cost)
        return min(self.steps, key=lambda s: (shortfall(s), len(s.float_nodes)))


def cost(step: Step) -> tuple:
    """Fewest float layers, then least output noise: the cheapest met step wins."""
    return len(step.float_nodes), -_sqnr(step)


def _sqnr(step: Step) -> float:
    value = step.accuracy.get("sqnr_db")
    return float("inf") if value is None else value


def run_fallback(backend, evaluator: Evaluator, budget: Budget, *, max_float_layers: int = 10,
                 time_budget_s: float = 600.0, ranking: Sequence[NodeSensitivity] | None = None,
                 measure_latency: bool = True, on_step: Callable[[str], None] = lambda s: None,
                 parallel: Callable | None = None, confirm: Evaluator | None = None) -> FallbackResult:
    """Search the smallest float set meeting `budget` on `backend` (see the module docstring).

    ranking: a sensitivity ranking measured before (default: measured here); parallel(evaluator):
    the ranking's `evaluate_many` (edgekit.debug.parallel) [default: serial in this process];
    confirm: held-out samples apart from `evaluator`'s on which the choice must hold too
    (`edgekit.debug.confirm`) [default None: the search's own samples decide].
    """
    search = _Search(backend, evaluator, budget, time.monotonic() + time_budget_s, measure_latency, on_step)
    confirmer = Confirmer(confirm, budget, backend, lambda step: search.models[tuple(step.float_nodes)], on_step)
    baseline = search.try_set("baseline", [])
    if confirmer.confirm(baseline):
        return _result(search, budget, list(ranking or []), "full INT8 meets the budget", confirmer)
    many = None
    if ranking is None:
        half = search.start + time_budget_s / 2
        subset = evaluator.subset(SENSITIVITY_SAMPLES)
        many = parallel(subset) if parallel else None
        ranking, _ = measure_sensitivity(backend, subset, deadline=half, on_step=on_step, evaluate_many=many)
    order = [r.node for r in ranking]
    builds = many.builds(evaluator) if hasattr(many, "builds") else None  # the ranking's workers, if any
    prefixes = [order[:k] for k in range(1, min(len(order), max_float_layers) + 1)]
    greedy = [] if search.out_of_time() else search.try_first("greedy", prefixes, builds,
                                                              lambda step: confirmer.confirm(step) or search.out_of_time())
    chosen = list(greedy[-1].float_nodes) if greedy else []
    stopped = ("budget met" if greedy and passed(greedy[-1]) else f"time budget ({time_budget_s:g} s) spent"
               if len(greedy) < len(prefixes) else f"max_float_layers ({max_float_layers}) reached")
    current = search.steps[-1]
    drops = list(reversed(chosen[:-1] if passed(current) else chosen))
    while drops and not search.out_of_time():  # each kept drop changes the trials after it

        def kept(step, current=current):
            return step.met or (not passed(current) and step.shortfall <= current.shortfall)

        trials = [[n for n in chosen if n != node] for node in drops]
        tried = search.try_first("prune", trials, builds, lambda step: kept(step) or search.out_of_time())
        drops = drops[len(tried):]
        if tried and kept(tried[-1]):
            chosen, current = list(tried[-1].float_nodes), tried[-1]
    return _result(search, budget, list(ranking), stopped, confirmer)


def _result(search: _Search, budget: Budget, ranking, stopped: str, confirmer: Confirmer) -> FallbackResult:
    best = confirmer.choose(search.steps, cost) or search.best()
    met, stopped = outcome(best, stopped)
    return FallbackResult(budget, STRATEGY, search.steps, best, met, search.models[tuple(best.float_nodes)],
                          ranking, stopped, confirmer.record(search.evaluator))


def raise_if_unmet(result: FallbackResult, where=None) -> None:
    """GateFailed (exit 10) naming the budget and the best point found, when it was not met."""
    if result.met:
        return
    best = result.best
    acc = best.accuracy
    point = ", ".join(f"{k}={acc[k]}" for k in SHOWN if acc.get(k) is not None)
    if best.confirmation is not None and not best.confirmation["met"]:
        seen = best.confirmation["accuracy"]
        point += (" on the search's samples, but " + ", ".join(f"{k}={v}" for k, v in seen.items()) +
                  f" on {best.confirmation['samples']} held-out samples it did not use")
    int16 = sum(v == "int16" for v in best.precisions.values())
    raised = f" and {int16} int16 unit(s)" if int16 else ""
    raise GateFailed(f"fallback search could not meet {result.budget.describe()}; best point: "
                     f"{len(best.float_nodes)} float layer(s) {best.float_layers}{raised} with {point} "
                     f"({result.stopped})", where)
