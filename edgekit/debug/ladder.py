"""The precision ladder: per tensor group, W8A8 -> W8A16 -> float, and per conv/matmul's weights,
INT8 -> int16 -> float, cheapest first, against a budget.

On a backend that quantizes once and edits the graph (`backends.onnx.ladder.OnnxLadder`):
1. the plain INT8 model is validated on the full held-out split; if it meets the budget, stop;
   else, on a backend with `bias_correction` (ONNX), the bias-corrected INT8 model is validated
   too and becomes the starting point of every later candidate only when it scores better
   (smaller shortfall, then higher SQNR): a recorded step "bias correction" either way;
   Concats whose inputs' calibrated ranges are orders of magnitude apart (`heterogeneous`,
   known before any build) rank first in both directions below (`edgekit.debug.ladder_rank`);
2. descent, when the all-int16 model (every unit and every conv/matmul's weights int16: W16A16)
   meets the budget (`edgekit.debug.ladder_rank.rank_descent`): every unit read by a conv/matmul
   is measured on the first DESCENT_SAMPLES (32) samples at INT8 together with its readers'
   weights (a group: what makes those MACs W8A8) as the output noise it adds to the all-int16
   model (`scoring.ranking_noise` of the primary output: its log-probability noise on the classes
   in contention when it is a probability output, else 10^(-SQNR/10)), weights no unit carries
   by the output noise of their INT8 weights alone (no build), per MAC it would move to W8A8; the most sensitive
   groups covering 1/16, 2/16, ... (DESCENT_GRID) of the ranked MACs are kept int16 (the rest back
   to INT8) until one meets the budget; then up to PRUNE_LIMIT (8) kept groups, least sensitive
   first, are tried at INT8; then the kept groups are split: all their weights at INT8 (W8A16) in
   one candidate, else up to PRUNE_LIMIT of them, most MACs first, one at a time: the weights go to
   INT8 where they alone cost less than half the group, else the activations (W16A8); units that
   feed no conv/matmul stay int16 (no MAC cost) unless all can go back at once. A unit whose
   conv/matmul readers split by input channels (`group_units`, ONNX) is W8A8 with channel-group
   activation scales (level "groups", each group its own INT8 scale) wherever the descent
   measures or puts it back at W8A8;
3. climb, otherwise: units are scored by the local noise of their own INT8 grid on float
   activations, the SHORTLIST (16) noisiest measured end to end (noise removed alone at int16);
   units go to int16 in rank order in growing batches (1, 2, 4, ...) until the budget holds or
   `max_units` (default 4 x max_float_layers) are raised, the smallest prefix is bisected; if
   int16 is not enough, units go on to float over the closest point so far (the all-int16
   model when it came closer) in the order of their measured float gain over that point
   (`rank_float`), up to `max_float_layers` (default 10); then up to PRUNE_LIMIT raised units
   are lowered one rung each when it still holds.
Every candidate is a recorded Step (its `precisions`); the final model is the met step with the
fewest conv/matmul MACs off W8A8 (then fewest float, int16, then channel-group units), and given `confirm`
samples, one that meets the budget on them too (`edgekit.debug.confirm`: plain INT8 or its
bias-corrected build refuted there means the search goes on); host latency is measured on the baseline
and the final model only. Stops at `time_budget_s` (default 600) with the best point so far.
`executor` (an edgekit.executor Executor; default None, serial): independent candidates (the
rankings' measurements, the descent's grid, the climb's growing prefixes) are measured on it,
`width` at a time (`edgekit.debug.parallel_ladder`); the steps recorded and the result are the
serial run's (a speculative candidate past the first that meets is not recorded).
"""

from __future__ import annotations

import time
from itertools import accumulate
from typing import Callable

from edgekit.debug.confirm import Confirmer, outcome, passed, shortfall
from edgekit.debug.fallback import FallbackResult, Step
from edgekit.debug.ladder_rank import UnitSensitivity, all_int16, rank_descent, rank_float, rank_units
from edgekit.debug.parallel_ladder import Candidates
from edgekit.debug.scoring import Budget, Evaluator

DESCENT_GRID = 16  # the descent tries keeping the most sensitive 1/16, 2/16, ... of the ranked MACs int16
# (a task metric such as top-1 agreement moves by single samples near its limit: not monotonic enough to bisect)
PRUNE_LIMIT = 8
STRATEGY = "precision ladder W8A8 -> W8A16 -> float by measured sensitivity, then prune"
RUNGS = ("int8", "int16", "float")

__all__ = ["UnitSensitivity", "ladder_details", "run_ladder", "search_ladder"]


class _Search:
    def __init__(self, backend, evaluator: Evaluator, budget: Budget, deadline: float, on_step, executor=None,
                 confirm: Evaluator | None = None):
        self.backend, self.evaluator, self.budget = backend, evaluator, budget
        self.deadline, self.on_step = deadline, on_step
        self.candidates = Candidates(backend, executor)
        self.start = time.monotonic()
        self.steps: list[Step] = []
        self.macs = backend.unit_macs()
        self.confirmer = Confirmer(confirm, budget, backend, self.model_of, on_step)

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline

    def spent(self) -> str:
        """Why a search stopped at its deadline."""
        return f"time budget spent ({len(self.steps)} builds)"

    def try_levels(self, phase: str, levels: dict[str, str]) -> Step:
        return self.try_first_met(phase, [levels])[0]

    def try_first_confirmed(self, phase: str, candidates: list[dict]) -> list[Step]:
        """`try_first_met`, going on past a met step the confirmation samples refute."""
        steps: list[Step] = []
        while len(steps) < len(candidates):
            steps += self.try_first_met(phase, candidates[len(steps):])
            if not steps[-1].met or self.confirmer.confirm(steps[-1]) or self.out_of_time():
                break
        return steps

    def try_first_met(self, phase: str, candidates: list[dict]) -> list[Step]:
        """Measure `candidates` in order, `width` at a time, up to the first that meets the budget
        (or the deadline, after at least one); the steps recorded are those of a serial run."""
        steps: list[Step] = []
        for start in range(0, len(candidates), self.candidates.width):
            if steps and (steps[-1].met or self.out_of_time()):
                break
            batch = [{k: v for k, v in c.items() if v != "int8"} for c in candidates[start:start + self.candidates.width]]
            for levels in batch:
                self.on_step(f"ladder {phase}: {sum(v == 'int16' for v in levels.values())} int16, "
                             f"{sum(v == 'float' for v in levels.values())} float")
            for levels, acc in zip(batch, self.candidates.measure(self.evaluator, batch)):
                steps.append(self._record(phase, levels, acc))
                if steps[-1].met:
                    break
        return steps

    def _record(self, phase: str, levels: dict, acc) -> Step:
        floats = [k for k, v in levels.items() if v == "float"]
        step = Step(phase, floats, [self.backend.label(k) for k in floats], acc.model_dump(mode="json"),
                    len(self.backend.build(levels)), None, self.budget.met(acc), self.budget.shortfall(acc),
                    round(time.monotonic() - self.start, 3), self.backend.quantization(levels), dict(levels))
        self.steps.append(step)
        return step

    def best(self) -> Step:
        met = [s for s in self.steps if passed(s)]
        if met:
            return min(met, key=self.rank)
        return min(self.steps, key=lambda s: (shortfall(s), self.cost(s.precisions)))

    def rank(self, step: Step) -> tuple:
        return self.cost(step.precisions), step.shortfall

    def model_of(self, step: Step) -> bytes:
        """`step`'s model, built from the INT8 graph it used (bias-corrected or not)."""
        if not hasattr(self.backend, "bias_correction"):
            return self.backend.build(step.precisions)
        now = "bias_correction" in self.backend.quantization()
        self.backend.bias_correction("bias_correction" in step.quantization)
        try:
            return self.backend.build(step.precisions)
        finally:
            self.backend.bias_correction(now)

    def cost(self, levels: dict) -> tuple:
        """(MACs moved off W8A8, float units, int16 units, channel-group units): the cheapest met step wins."""
        off = (self.backend.off_w8a8_macs(levels) if hasattr(self.backend, "off_w8a8_macs")
               else sum(self.macs.get(u, 0) for u in levels))
        return (off, *(sum(v == level for v in levels.values()) for level in ("float", "int16", "groups")))


def run_ladder(backend, evaluator: Evaluator, budget: Budget, *, max_float_layers: int = 10,
               max_units: int | None = None, time_budget_s: float = 600.0, measure_latency: bool = True,
               on_step: Callable[[str], None] = lambda s: None, executor=None,
               confirm: Evaluator | None = None) -> tuple[FallbackResult, list[UnitSensitivity]]:
    """(the search's FallbackResult, the unit ranking); see the module docstring. confirm:
    held-out samples apart from `evaluator`'s on which the choice must hold too
    (`edgekit.debug.confirm`) [default None: the search's own samples decide]."""
    search = _Search(backend, evaluator, budget, time.monotonic() + time_budget_s, on_step, executor, confirm)
    confirmer = search.confirmer
    baseline = search.try_levels("baseline", {})
    ranking: list[UnitSensitivity] = []
    stopped = "full INT8 meets the budget"
    if not confirmer.confirm(baseline) and hasattr(backend, "bias_correction"):
        _bias_correction(search, baseline)
    if not confirmer.confirm(search.best()):
        every = all_int16(backend)
        half = search.start + time_budget_s / 2
        if search.try_levels("all int16", every).met:
            ranking = rank_descent(backend, evaluator, search.candidates, deadline=half, on_step=on_step)
            stopped = _descend(search, ranking, every)
        else:
            ranking = rank_units(backend, evaluator, search.candidates, deadline=half, on_step=on_step)
            stopped = _climb(search, ranking, max_units or 4 * max_float_layers, max_float_layers)
    else:
        stopped = "full INT8 meets the budget" + (" with bias correction" if search.best() is not baseline else "")
    best = confirmer.choose(search.steps, search.rank) or search.best()
    met, stopped = outcome(best, stopped)
    if hasattr(backend, "bias_correction"):
        backend.bias_correction("bias_correction" in best.quantization)
    model = backend.build(best.precisions)
    if measure_latency:
        baseline.latency_p50_ms = evaluator.latency(backend, backend.build()).p50_ms
        best.latency_p50_ms = evaluator.latency(backend, model).p50_ms
    result = FallbackResult(budget, STRATEGY, search.steps, best, met, model, [], stopped,
                            confirmer.record(evaluator))
    return result, ranking


def _bias_correction(search: _Search, baseline: Step) -> None:
    """Validate the bias-corrected INT8 model; keep it as every later candidate's base only when
    it scores better than `baseline` (smaller shortfall, then less output noise)."""
    search.on_step("ladder: bias correction")
    search.backend.bias_correction(True)
    step = search.try_levels("bias correction", {})

    def rank(s: Step) -> tuple:
        sqnr = s.accuracy.get("sqnr_db")
        return (s.shortfall, 0.0 if sqnr is None else -sqnr)

    if rank(step) >= rank(baseline):
        search.backend.bias_correction(False)


def _bisect(search: _Search, order: list[str], low: int, high: int, base: dict | None = None) -> int:
    """The shortest prefix of `order` at int16 (over `base`) in (low, high] that meets the budget
    (high meets)."""
    while high - low > 1 and not search.out_of_time():
        mid = (low + high) // 2
        if search.try_levels("bisect int16", {**(base or {}), **{u: "int16" for u in order[:mid]}}).met:
            high = mid
        else:
            low = mid
    return high


def _descend(search: _Search, ranking: list[UnitSensitivity], every: dict[str, str]) -> str:
    """From all int16 down, over the ranking's groups (a unit with its readers' weights, or weights
    alone: `UnitSensitivity.keys`; at W8A8 a unit takes its `low` level); see the module docstring."""
    ranked = {k for row in ranking for k in row.keys}
    free = {u: "int16" for u in every if u not in ranked}

    def keeping(kept: int) -> dict[str, str]:  # the first `kept` rows int16, the rest at W8A8
        return {**free, **{k: "int16" for row in ranking[:kept] for k in row.keys},
                **{row.node: row.low for row in ranking[kept:] if row.low != "int8"}}

    macs = list(accumulate(search.macs.get(row.node, 0) for row in ranking))
    total = macs[-1] if macs else 0
    sizes = sorted({next(n + 1 for n, m in enumerate(macs) if m >= total * j / DESCENT_GRID)
                    for j in range(1, DESCENT_GRID)}) if total else []
    tried = search.try_first_confirmed("descend", [keeping(n) for n in sizes if n < len(ranking)])
    high = sizes[len(tried) - 1] if tried and passed(tried[-1]) else len(ranking)
    levels = keeping(high)
    for row in list(reversed(ranking[:high]))[:PRUNE_LIMIT]:
        if search.out_of_time():
            return search.spent()
        trial = row.lowered(levels)
        if search.try_levels("prune", trial).met:
            levels = trial
    split = sorted((row for row in ranking[:high] if row.weights and all(levels.get(k) == "int16" for k in row.keys)),
                   key=lambda row: -search.macs.get(row.node, 0))
    weights = {k for row in split for k in row.weights}
    if weights and not search.out_of_time():  # W8A16 for every kept group at once
        trial = _without(levels, weights)
        if search.try_levels("split", trial).met:
            levels, split = trial, []
    for row in split[:PRUNE_LIMIT]:  # the half that costs less alone goes back to INT8
        if search.out_of_time():
            return search.spent()
        weights_cheaper = row.weight_noise is not None and row.int16_gain is not None \
            and row.weight_noise < row.int16_gain / 2
        trial = _without(levels, row.weights if weights_cheaper else [row.node])  # W16A8: no channel groups
        if search.try_levels("split", trial).met:
            levels = trial
    if free and not search.out_of_time():
        search.try_levels("free units INT8", _without(levels, free))
    return "budget met"


def _without(levels: dict[str, str], keys) -> dict[str, str]:
    """`levels` with `keys` back at INT8."""
    return {k: v for k, v in levels.items() if k not in keys}


def _climb(search: _Search, ranking: list[UnitSensitivity], max_units: int, max_float: int) -> str:
    """Greedy int16 (growing prefixes of the ranking), then float in measured float-gain order,
    then bisection and prune; returns why it stopped."""
    order = [r.node for r in ranking][:max_units]
    sizes, size = [], 0
    while size < len(order):
        size = min(len(order), max(1, size * 2))
        sizes.append(size)
    tried = search.try_first_confirmed("greedy int16", [{u: "int16" for u in order[:n]} for n in sizes])
    size = sizes[len(tried) - 1] if tried else 0
    last_short = sizes[len(tried) - 2] if len(tried) > 1 else 0
    if tried and passed(tried[-1]) and size - last_short > 1:  # bisect the smallest prefix in (last_short, size]
        size = _bisect(search, order, last_short, size)
    levels = dict(search.best().precisions)  # the closest point so far (all int16 may beat the prefix)
    met = passed(search.best())
    half = time.monotonic() + (search.deadline - time.monotonic()) / 2  # the other half for the float steps
    floats = [] if met else rank_float(search.backend, search.evaluator, search.candidates, levels, ranking,
                                       deadline=half, on_step=search.on_step)
    for unit in floats[:max_float]:
        if search.out_of_time():
            return search.spent()
        levels[unit] = "float"
        if search.try_levels("greedy float", levels).met:
            met = True
            break
    best = search.best()
    levels = dict(best.precisions)
    current = best
    for unit in [u for u in dict.fromkeys(reversed(order + floats)) if u in levels][:PRUNE_LIMIT]:
        if search.out_of_time():
            break
        trial = dict(levels)
        lower = RUNGS[RUNGS.index(trial[unit]) - 1]
        trial[unit] = lower
        step = search.try_levels("prune", trial)
        if step.met or (not current.met and step.shortfall <= current.shortfall):
            levels, current = trial, step
    if met:
        return "budget met"
    return f"max units reached ({len(order)} int16, {min(len(floats), max_float)} float)"


def ladder_details(backend, evaluator: Evaluator, result: FallbackResult, ranking: list[UnitSensitivity],
                   fp32_model: bytes | None = None, top: int = 20) -> dict:
    """The report's record of a ladder search: the per-layer precision map (layer, op, precision,
    sensitivity, MACs), the share of conv/matmul MACs per precision, the nodes the quantizer keeps
    float before any search (`auto_float`: node -> reason, e.g. a Concat that writes a graph
    output, `backends.onnx.exclusions`), the bias-correction step (`bias_correction`: kept or
    not, layers, max shift, SQNR and shortfall plain vs corrected; None when not tried), the `top` first-ranked units
    and the host p50 latency of the final model next to plain INT8 and FP32 (when given);
    `regrouped_weights`: the channel-group readers with INT8 weight scales per group (ONNX)."""
    sensitivity = {r.node: r.score for r in ranking if r.score not in (None, float("inf"))}
    layers = backend.layer_map(result.model, sensitivity)
    total = sum(row["macs"] for row in layers) or 1
    share: dict[str, float] = {}
    for row in layers:
        share[row["precision"]] = share.get(row["precision"], 0.0) + row["macs"] / total
    latency = {"int8_plain": result.steps[0].latency_p50_ms, "final": result.best.latency_p50_ms}
    if fp32_model is not None:
        latency["fp32"] = evaluator.latency(backend, fp32_model).p50_ms
    auto = (getattr(backend, "settings", None) or {}).get("nodes_excluded_auto", {})
    tried = next((s for s in result.steps if s.phase == "bias correction"), None)
    bias = None if tried is None else {
        "kept": "bias_correction" in result.best.quantization, **tried.quantization["bias_correction"],
        "plain_sqnr_db": result.steps[0].accuracy.get("sqnr_db"), "corrected_sqnr_db": tried.accuracy.get("sqnr_db"),
        "plain_shortfall": result.steps[0].shortfall, "corrected_shortfall": tried.shortfall}
    return {"precisions": result.best.precisions, "layers": layers, "auto_float": auto, "bias_correction": bias,
            "regrouped_weights": result.best.quantization.get("regrouped_weights", []),
            "mac_share": {k: round(v, 4) for k, v in sorted(share.items())},
            "ranking": [r.to_dict() for r in ranking[:top]], "latency_p50_ms": latency}


def search_ladder(backend, evaluator: Evaluator, budget: Budget, *, max_float_layers: int = 10,
                  time_budget_s: float = 600.0, on_step: Callable[[str], None] = lambda s: None,
                  executor=None, confirm: Evaluator | None = None) -> tuple[FallbackResult, dict]:
    """Run the ladder on `backend` (closed afterwards) and return (its FallbackResult,
    `ladder_details` with FP32 latency when the backend gives `fp32_model()`); executor, confirm:
    see `run_ladder` [default None: serial, unconfirmed]."""
    try:
        result, ranking = run_ladder(backend, evaluator, budget, max_float_layers=max_float_layers,
                                     time_budget_s=time_budget_s, on_step=on_step, executor=executor,
                                     confirm=confirm)
        fp32 = backend.fp32_model() if hasattr(backend, "fp32_model") else None
        return result, ladder_details(backend, evaluator, result, ranking, fp32)
    finally:
        backend.close()
