"""What each model output is, so validation measures the right thing on the right axis.

Roles: `scores` (class probabilities/logits on `class_axis`), `sequence` ([N, T, C] per-timestep
classes, CTC greedy decode), `map` (dense probability maps), `boxes` (detector rows: leading
coordinate rows, then class-score rows, split by value range), `regression`, `state` (recurrent
state fed back as an input: reported, never the headline). A recipe's `outputs:` overrides any
inferred field; exactly one output is primary and carries the headline and the gates (declared,
else inferred: probabilities first, then sequences, detector heads, logits, maps, regression).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Mapping, Optional, Sequence

import numpy as np

ROLES = ("scores", "sequence", "map", "boxes", "regression", "state")
REGRESSION_NAMES = re.compile(r"box|bbox|coord|offset|landmark|regress|delta|depth|pose|keypoint", re.I)
SCORE_NAMES = re.compile(r"prob|score|logit|class|cls|conf|softmax|label|pred|ctc", re.I)
STATE_SUFFIX = re.compile(r"(_?(out|in|new|next|prev|n|0|1))+$")
SPLIT_RATIO = 10.0  # coordinate rows span >= 10x the range of the class-score rows
INFER_SAMPLES = 64  # roles are inferred from the first 64 float outputs
UNIT_SLACK = 1e-3  # values in [-0.001, 1.001] count as [0, 1] (float rounding)
BLANK_SHARE = 0.3  # unbounded [N, T, C] is CTC-like when one class wins >= 30% of timesteps


@dataclass(frozen=True)
class OutputRole:
    """The resolved role of one output; `feature_axis` splits it into channel groups.

    class_axis: the class axis of scores/sequence (negative = from the end); box_rows: leading
    coordinate rows of a detector head along `feature_axis`; blank_index: CTC blank (None = the
    float output's most frequent class); the rest are decode settings (defaults in the recipe).
    """

    role: str
    class_axis: Optional[int] = None
    feature_axis: Optional[int] = None
    box_rows: Optional[int] = None
    blank_index: Optional[int] = None
    alphabet: Optional[str] = None
    box_format: str = "cxcywh"
    score_threshold: float = 0.25
    nms_iou: float = 0.45
    map_threshold: float = 0.5
    inferred: bool = True
    rank: int = 9  # primary preference, lower first


@dataclass(frozen=True)
class OutputRoles:
    """Every output's role and the primary output's name."""

    roles: dict
    primary: str

    def __getitem__(self, name: str) -> OutputRole:
        return self.roles[name]


def _stem(name: str) -> str:
    base = re.sub(r"[^a-z0-9_]", "", name.lower().rsplit("/", 1)[-1].split(":")[0])
    return STATE_SUFFIX.sub("", base) or base


def is_state(name: str, shape: Sequence[int], inputs: Mapping[str, Sequence[int]]) -> bool:
    """An output shaped like an input whose name pairs with it (stateN/state, hn/h0, cn/c0)."""
    same = [n for n, s in inputs.items() if tuple(s) == tuple(shape)]
    return any(_stem(n) == _stem(name) or ("state" in name.lower() and "state" in n.lower()) for n in same)


def _in_unit(x: np.ndarray) -> bool:
    return bool(x.size) and float(x.min()) >= -UNIT_SLACK and float(x.max()) <= 1 + UNIT_SLACK


def probability_axis(x: np.ndarray, axes: Sequence[int]) -> Optional[int]:
    """The axis of `x` along which values sum to 1 (softmax), or None."""
    if not _in_unit(x):
        return None
    for axis in axes:
        if x.shape[axis] > 1 and np.mean(np.abs(x.sum(axis=axis) - 1.0) < 1e-2) > 0.99:
            return axis
    return None


def split_rows(x: np.ndarray, axis: int) -> Optional[int]:
    """k when rows [0, k) along `axis` span >= 10x the range of rows [k, F) and those lie in
    [0, 1] (box coordinates, then class scores); None when the rows are homogeneous. One pass
    over the values (per-row extremes, then running extremes of every head and tail)."""
    rows = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    if rows.shape[0] < 3 or rows.shape[1] < 2:
        return None
    low, high = rows.min(axis=1).astype(np.float64), rows.max(axis=1).astype(np.float64)
    span = np.maximum(np.abs(low), np.abs(high))
    head_span = np.minimum.accumulate(span)  # [k - 1]: the smallest span of rows [0, k)
    tail_low = np.minimum.accumulate(low[::-1])[::-1]  # [k]: over rows [k, F)
    tail_high = np.maximum.accumulate(high[::-1])[::-1]
    tail_span = np.maximum.accumulate(span[::-1])[::-1]
    k = np.arange(1, rows.shape[0] - 1)
    ok = ((tail_low[k] >= -UNIT_SLACK) & (tail_high[k] <= 1 + UNIT_SLACK)
          & (head_span[k - 1] >= SPLIT_RATIO * np.maximum(tail_span[k], 1e-6)))
    return int(k[ok][0]) if ok.any() else None


# An unnamed [N, T, C] logit output with a dominant class is a CTC sequence only up to this many
# timesteps: a detector's per-anchor head ([1, 7600, 32] box-distribution logits) is not one.
MAX_UNNAMED_TIMESTEPS = 1024


def _infer(name: str, x: np.ndarray) -> OutputRole:
    """Role of an output from its stacked float values x: [samples, *shape]."""
    shape = x.shape[1:]
    rank, size = len(shape), int(np.prod(shape)) if shape else 1
    last = -1 if rank else None
    if size == 1:
        return OutputRole("scores", class_axis=last, rank=0) if _in_unit(x) else OutputRole("regression", rank=8)
    if rank >= 4:
        feature = 1 - rank if shape[0] == 1 and shape[1] < shape[-1] else -1
        role = "map" if _in_unit(x) else "regression"
        return OutputRole(role, feature_axis=feature, rank=6 if role == "map" else 8)
    core = [a for a in range(1, rank) if shape[a] > 1] if rank > 1 and shape[0] == 1 else list(range(rank))
    if rank == 3 and len(core) == 2:
        for axis in sorted(core, key=lambda a: shape[a]):
            k = split_rows(x, axis + 1)
            if k is not None:
                return OutputRole("boxes", feature_axis=axis - rank, box_rows=k, rank=3)
        prob = probability_axis(x, [3, 2])
        if prob is not None:
            return OutputRole("sequence", class_axis=prob - 4, rank=2)
        ids = x.argmax(axis=-1)
        blank = shape[-2] <= MAX_UNNAMED_TIMESTEPS and np.bincount(ids.ravel()).max() >= BLANK_SHARE * ids.size
        if SCORE_NAMES.search(name) or blank:
            return OutputRole("sequence", class_axis=-1, rank=4)  # logits: named so, or a dominant blank
        return OutputRole("regression", feature_axis=-1, rank=8)  # e.g. hidden states: argmax means nothing
    axis = core[-1] - rank if core else -1
    if REGRESSION_NAMES.search(name) and not probability_axis(x, [axis]):
        return OutputRole("regression", feature_axis=axis, rank=8)
    if probability_axis(x, [axis]) is not None:
        return OutputRole("scores", class_axis=axis, rank=0)
    if _in_unit(x):
        return OutputRole("scores", class_axis=axis, rank=1)
    return OutputRole("scores", class_axis=axis, rank=4 if SCORE_NAMES.search(name) else 5)


def resolve_roles(reference: Sequence[Mapping[str, np.ndarray]], inputs: Mapping[str, Sequence[int]] | None = None,
                  declared: Mapping | None = None) -> OutputRoles:
    """Roles of every output of the float `reference` outputs (a list of samples).

    inputs: {input name: shape}, to recognize recurrent state; declared: the recipe's `outputs:`
    ({name: OutputSpec}); a declared field wins over the inferred one.
    """
    from edgekit.errors import RecipeError

    declared = dict(declared or {})
    unknown = sorted(set(declared) - set(reference[0]))
    if unknown:
        raise RecipeError(f"outputs: {unknown} not among the model's outputs {sorted(reference[0])}")
    roles = {}
    for name in sorted(reference[0]):
        x = np.stack([np.asarray(r[name], dtype=np.float64) for r in reference[:INFER_SAMPLES]])
        role = OutputRole("state", rank=99) if is_state(name, x.shape[1:], inputs or {}) else _infer(name, x)
        spec = declared.get(name)
        if spec is not None:
            role = _apply(role, spec, x)
        roles[name] = role
    primaries = [n for n, s in declared.items() if getattr(s, "primary", False)]
    primary = primaries[0] if primaries else min(roles, key=lambda n: (roles[n].rank, n))
    return OutputRoles(roles, primary)


def _apply(role: OutputRole, spec, x: np.ndarray) -> OutputRole:
    fields = {k: v for k, v in spec.model_dump().items() if k != "primary" and v is not None}
    if fields.get("role") and fields["role"] != role.role:
        base = {"scores": OutputRole("scores", class_axis=-1, rank=0),
                "sequence": OutputRole("sequence", class_axis=-1, rank=2),
                "boxes": OutputRole("boxes", feature_axis=-1, rank=3),
                "map": OutputRole("map", feature_axis=-1, rank=6),
                "regression": OutputRole("regression", rank=8),
                "state": OutputRole("state", rank=99)}[fields["role"]]
        role = base
    for axis in ("class_axis", "feature_axis"):  # per-sample axes, kept negative
        if fields.get(axis) is not None and fields[axis] >= 0:
            fields[axis] -= x.ndim - 1
    if fields.get("role", role.role) in ("boxes", "map", "regression") and "class_axis" in fields:
        fields["feature_axis"] = fields.pop("class_axis")  # the rows' axis
    role = replace(role, **fields, inferred=False)
    if role.role == "boxes" and role.box_rows is None:
        role = replace(role, box_rows=split_rows(x, role.feature_axis) or 4)
    return role
