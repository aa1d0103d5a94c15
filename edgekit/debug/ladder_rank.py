"""The precision ladder's rankings: which tensor groups (units) to raise first, measured.

- `rank_units` (the climb, from plain INT8): units scored by the local noise of their own INT8
  grid on float activations, the SHORTLIST (16) noisiest measured end to end on the first
  SENSITIVITY_SAMPLES (32) held-out samples: the output noise removed with the unit alone at
  int16 (`int16_gain`, the rank); output noise everywhere here is `scoring.ranking_noise` (the
  log-probability noise of a probability output's contenders, else 10^(-SQNR/10));
- `rank_float` (the climb's float rung): the units (at most FLOAT_SHORTLIST, 32: first the
  WEIGHT_SHORTLIST (8) whose readers' INT8 weights alone cost the output most, then by local
  noise) measured alone in float over the closest point so far (often all int16) on the first
  FLOAT_SAMPLES (16) held-out samples, highest gain first: a tensor whose error int16 does not
  remove (its readers' INT8 weights go float with it) shows here, not in the int16 rank;
- `rank_descent` (from all int16, weights included): every unit read by a conv/matmul measured
  at INT8 together with its readers' weights (what makes those MACs W8A8; with channel-group
  activation scales where its readers split by input channels: `low`), and the weights no
  measured unit carries by the output noise of their INT8 weights alone (no build), by the noise
  per MAC it would move to W8A8.
Heterogeneous Concats (inputs' calibrated ranges orders of magnitude apart) rank first. Every
measurement goes through `Candidates` (serial, or an executor) in batches of its width; units
not measured before `deadline` keep their place by local noise.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

from edgekit.debug.parallel_ladder import Candidates
from edgekit.debug.scoring import Evaluator, ranking_noise

SENSITIVITY_SAMPLES = 32
DESCENT_SAMPLES = 32
SHORTLIST = 16
FLOAT_SHORTLIST = 32
WEIGHT_SHORTLIST = 8  # of FLOAT_SHORTLIST: the units whose readers' INT8 weights cost most
FLOAT_SAMPLES = 16


@dataclass
class UnitSensitivity:
    """One tensor group's rank: local INT8 noise, end-to-end gain at int16 (from plain INT8) and
    in float (over the climb's closest point; None: not measured), the output noise its readers'
    INT8 weights alone cause (weight_noise), why it went first (a heterogeneous Concat), the
    score it was ranked by and the weight keys that change precision with it (`weights`: its
    readers' in the descent)."""

    node: str
    layer: str
    op_type: str
    index: int
    local_noise: Optional[float] = None
    int16_gain: Optional[float] = None
    heterogeneous: Optional[str] = None
    score: float = 0.0
    float_gain: Optional[float] = None
    weight_noise: Optional[float] = None
    weights: list = field(default_factory=list)
    low: str = "int8"  # the level its activations take at W8A8: "groups" where its readers split by channel groups

    @property
    def keys(self) -> list:
        """What the descent moves together: the unit (or weight key) and `weights`."""
        return [self.node, *self.weights]

    def lowered(self, levels: dict) -> dict:
        """`levels` with this row's keys at W8A8 (the unit at `low`)."""
        kept = {k: v for k, v in levels.items() if k not in self.keys}
        return {**kept, self.node: self.low} if self.low != "int8" else kept

    def to_dict(self) -> dict:
        return asdict(self)


def measure_each(candidates: Candidates, evaluator: Evaluator, rows: list, levels_of: Callable, *,
                 deadline: float | None, on_step: Callable[[str], None], what: str) -> list:
    """[(row, [AccuracyReport per candidate of levels_of(row)])] for the rows measured before
    `deadline`, in batches of the candidates' width."""
    done = []
    for start in range(0, len(rows), candidates.width):
        if deadline is not None and time.monotonic() > deadline:
            break
        batch = rows[start:start + candidates.width]
        on_step(f"ladder {what} {start + len(batch)}/{len(rows)}: {batch[-1].layer}")
        levels = [levels_of(row) for row in batch]
        reports = iter(candidates.measure(evaluator, [c for group in levels for c in group]))
        done += [(row, [next(reports) for _ in group]) for row, group in zip(batch, levels)]
    return done


def rank_units(backend, evaluator: Evaluator, candidates: Candidates | None = None, *, deadline: float | None = None,
               shortlist: int = SHORTLIST, on_step: Callable[[str], None] = lambda s: None) -> list[UnitSensitivity]:
    """Units in climb order (see the module docstring); candidates: default serial."""
    candidates = candidates or Candidates(backend)
    subset = evaluator.subset(SENSITIVITY_SAMPLES)
    first, rows = _rows(backend, backend.local_noise(subset.feeds))
    base = ranking_noise(subset.accuracy(backend, backend.build()))
    noisy = sorted((r for r in rows.values() if r.heterogeneous is None and r.local_noise is not None),
                   key=lambda r: -r.local_noise)[:shortlist]
    for row, (acc,) in measure_each(candidates, subset, noisy, lambda r: [{r.node: "int16"}],
                                    deadline=deadline, on_step=on_step, what="sensitivity"):
        row.int16_gain = row.score = base - ranking_noise(acc)
    measured = sorted((r for r in rows.values() if r.int16_gain is not None), key=lambda r: (-r.score, r.index))
    rest = sorted((r for r in rows.values() if r.int16_gain is None and r.heterogeneous is None),
                  key=lambda r: -(r.local_noise or 0.0))
    return first + [r for r in measured if r.score > 0] + [r for r in measured if r.score <= 0] + rest


def rank_float(backend, evaluator: Evaluator, candidates: Candidates, base_levels: dict, ranking: list, *,
               deadline: float | None = None, on_step: Callable[[str], None] = lambda s: None) -> list[str]:
    """Unit ids for the float rung over `base_levels`, highest measured float gain first (only
    gains > 0); `ranking`'s rows get their `float_gain` over that base."""
    subset = evaluator.subset(FLOAT_SAMPLES)
    # every unit, not only those a conv/matmul reads: a graph output whose held-out values leave
    # its calibrated range is clipped at int16 too, and only float removes that
    open_units = [r for r in ranking if base_levels.get(r.node) != "float"]
    by_activation = sorted(open_units, key=lambda r: -(r.local_noise or 0.0))
    # and the units whose readers' INT8 weights cost the output most (int16 leaves weights INT8;
    # float gives the readers their float weights): measured first
    weights = _weight_noise(backend, subset, deadline)
    for row in open_units:
        row.weight_noise = weights.get(row.node)
    by_weights = sorted((r for r in open_units if r.weight_noise), key=lambda r: -r.weight_noise)
    costly = list({id(r): r for r in by_weights[:WEIGHT_SHORTLIST] + by_activation}.values())[:FLOAT_SHORTLIST]
    base = ranking_noise(subset.accuracy(backend, backend.build(base_levels)))
    gains = {}
    for row, (acc,) in measure_each(candidates, subset, costly, lambda r: [{**base_levels, r.node: "float"}],
                                    deadline=deadline, on_step=on_step, what="float gain"):
        row.float_gain = gains[row.node] = base - ranking_noise(acc)
    return [u for u, g in sorted(gains.items(), key=lambda kv: -kv[1]) if g > 0]


def _weight_noise(backend, evaluator: Evaluator, deadline, per_conv: bool = False) -> dict:
    """backend.weight_noise (per unit) or conv_weight_noise (per weight key, per_conv) on the
    evaluator's feeds, by its ranking noise, over at most a quarter of the time left (none: {})."""
    measure = getattr(backend, "conv_weight_noise" if per_conv else "weight_noise", None)
    if measure is None:
        return {}
    quarter = None if deadline is None else time.monotonic() + (deadline - time.monotonic()) / 4
    return measure(evaluator.feeds, evaluator.ranking_noise, quarter)


def all_int16(backend) -> dict[str, str]:
    """Every unit, and every conv/matmul's weights (`weight_keys`, when the backend has them), at int16."""
    return {**{u.id: "int16" for u in backend.graph.units},
            **{k: "int16" for k in (backend.weight_keys() if hasattr(backend, "weight_keys") else ())}}


def rank_descent(backend, evaluator: Evaluator, candidates: Candidates | None = None, *, deadline: float | None = None,
                 on_step: Callable[[str], None] = lambda s: None) -> list[UnitSensitivity]:
    """Units and weight keys in the order they stay int16, from the all-int16 model (`all_int16`):
    heterogeneous Concats first, then every unit read by a conv/matmul, measured at INT8 together
    with its readers' weights (with channel-group scales, `low` "groups", where the backend's
    `group_units` can split its readers) (`weights`: backend.reader_weights; the output noise they add: what
    making those MACs W8A8 costs), and the weights no measured unit carries (the output noise of
    their INT8 weights alone on the float model, `conv_weight_noise`: no build),
    each per MAC it would move to W8A8, highest first (units not measured before `deadline` count
    as most sensitive); every row's `weight_noise` is its weights' noise alone; the units that feed
    no conv/matmul are left out (int16 there costs no MACs: the descent keeps them int16 and tries
    them at INT8 last); candidates: default serial."""
    candidates = candidates or Candidates(backend)
    subset = evaluator.subset(DESCENT_SAMPLES)
    local = backend.local_noise(subset.feeds)
    macs = backend.unit_macs()
    every = all_int16(backend)
    weights = _weight_noise(backend, subset, deadline, per_conv=True)
    base = ranking_noise(subset.accuracy(backend, backend.build(every)))
    first, rows = _rows(backend, local)
    costly = [r for r in rows.values() if r.heterogeneous is None and macs.get(r.node, 0) > 0]
    costly.sort(key=lambda r: -(r.local_noise or 0.0))  # the noisiest measured first
    carried: set = set()
    grouped = set(backend.group_units()) if hasattr(backend, "group_units") else set()
    for row in costly:
        row.low = "groups" if row.node in grouped else "int8"
        readers = getattr(backend, "reader_weights", lambda unit: [])(row.node)
        row.weights = [k for k in readers if k in every and k not in carried]
        carried.update(row.weights)
        row.weight_noise = sum(weights.get(k, 0.0) for k in row.weights) if row.weights else None
    done = measure_each(candidates, subset, costly, lambda r: [r.lowered(every)],
                        deadline=deadline, on_step=on_step, what="sensitivity")
    for row, (acc,) in done:
        row.int16_gain = ranking_noise(acc) - base
        row.score = row.int16_gain / macs[row.node]
    unmeasured = [r for r in costly if r.int16_gain is None]
    grouped = {k for r in costly for k in r.keys}
    weight_rows = [UnitSensitivity(key, backend.label(key), "weights", -1, None, noise, weight_noise=noise,
                                   score=noise / macs[key]) for key, noise in weights.items()
                   if macs.get(key, 0) > 0 and key not in grouped]
    unmeasured += [UnitSensitivity(k, backend.label(k), "weights", -1) for k in every
                   if k not in rows and k not in weights and k not in grouped and macs.get(k, 0) > 0]
    measured = [r for r in costly if r.int16_gain is not None] + weight_rows
    return first + unmeasured + sorted(measured, key=lambda r: -r.score)


def _rows(backend, local: dict) -> tuple[list[UnitSensitivity], dict[str, UnitSensitivity]]:
    """(the heterogeneous Concat units, scored first; every unit's row by id)."""
    rows = {u.id: UnitSensitivity(u.id, backend.label(u.id), u.op_type, u.index, local.get(u.id))
            for u in backend.graph.units}
    first = []
    for unit_id, ratio, concat in backend.heterogeneous():
        rows[unit_id].heterogeneous = f"Concat {concat}: input ranges {ratio:.0f}x apart"
        rows[unit_id].score = float("inf")
        first.append(rows[unit_id])
    return first, rows
