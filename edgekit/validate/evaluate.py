"""Validate an artifact against the float reference on held-out samples, and time it on the host."""

from __future__ import annotations

import math
import time
from typing import Callable, Optional, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgekit.runtime.base import Runner
from edgekit.validate import metrics, task_metrics
from edgekit.validate.boxes import box_metrics
from edgekit.validate.latency import LatencySummary, summarize_latencies
from edgekit.validate.roles import OutputRole, OutputRoles, resolve_roles, split_rows

Outputs = dict[str, np.ndarray]


class OutputMetrics(BaseModel):
    """Error of one output over all held-out samples, and its role's task metrics.

    sqnr_db null = identical to the reference; groups: SQNR per channel group along the feature
    axis (worst named); log_prob_noise: `metrics.log_prob_noise` of a probability output (scores
    or sequence; the rankings' noise); the task fields are null where the role has none.
    """

    model_config = ConfigDict(extra="forbid")
    role: str = "regression"
    primary: bool = False
    max_abs_error: float
    cosine: float
    sqnr_db: Optional[float]
    groups: list[dict] = Field(default_factory=list)
    worst_group: Optional[str] = None
    worst_group_sqnr_db: Optional[float] = None
    log_prob_noise: Optional[float] = None
    top1_agreement: Optional[float] = None
    top5_agreement: Optional[float] = None
    accuracy: Optional[float] = None
    reference_accuracy: Optional[float] = None
    timestep_agreement: Optional[float] = None
    sequence_match: Optional[float] = None
    blank_index: Optional[int] = None
    examples: list[dict] = Field(default_factory=list)
    map_iou: Optional[float] = None
    boxes: Optional[dict] = None


class AccuracyReport(BaseModel):
    """The primary output's numbers (the headline the gates read), in [0, 1], plus every output.

    top1_agreement: scores top-1, or a sequence's per-timestep agreement; max_abs_error/cosine:
    the worst over every output that is not recurrent state.
    """

    model_config = ConfigDict(extra="forbid")
    samples: int
    primary_output: Optional[str] = None
    primary_role: Optional[str] = None
    top1_agreement: Optional[float] = None
    top5_agreement: Optional[float] = None
    accuracy: Optional[float] = None
    reference_accuracy: Optional[float] = None
    accuracy_drop_pts: Optional[float] = None
    sequence_match: Optional[float] = None
    map_iou: Optional[float] = None
    box_f1: Optional[float] = None
    worst_group: Optional[str] = None
    worst_group_sqnr_db: Optional[float] = None
    log_prob_noise: Optional[float] = None
    max_abs_error: float
    cosine: float
    sqnr_db: Optional[float]
    outputs: dict[str, OutputMetrics]


def _finite(value: Optional[float]) -> Optional[float]:
    return None if value is None or math.isinf(value) or math.isnan(value) else round(value, 6)


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(float(value), 6)


def output_metrics(ref: np.ndarray, test: np.ndarray, role: OutputRole,
                   labels: Sequence[Optional[int]]) -> OutputMetrics:
    """Tensor metrics, channel-group SQNR and the role's task metrics of stacked [samples, ...] arrays."""
    wide = np.asarray(ref, np.float64), np.asarray(test, np.float64)  # once: each metric would convert again
    m = OutputMetrics(role=role.role, max_abs_error=round(metrics.max_abs_error(*wide), 6),
                      cosine=round(metrics.cosine(*wide), 6), sqnr_db=_finite(metrics.sqnr_db(*wide)))
    feature = role.class_axis if role.class_axis is not None else role.feature_axis
    split = role.box_rows if role.role == "boxes" else (
        split_rows(ref, feature if feature < 0 else feature + 1) if feature is not None and ref.ndim > 2 else None)
    kinds = ("box coordinates", "class scores") if role.role == "boxes" else None
    groups = task_metrics.group_sqnr(*wide, feature, split, kinds)
    worst = min(groups, key=lambda g: g["sqnr_db"])
    m.groups = [{"group": g["group"], "sqnr_db": _finite(g["sqnr_db"])} for g in groups]
    m.worst_group, m.worst_group_sqnr_db = worst["group"], _finite(worst["sqnr_db"])
    if role.role in ("scores", "sequence") and ref[0].size > 1 and ref.shape[role.class_axis] > 1:
        ref_rows, test_rows = task_metrics.class_rows(ref, role.class_axis), task_metrics.class_rows(test, role.class_axis)
        noise = metrics.log_prob_noise(ref_rows, test_rows)
        m.log_prob_noise = None if noise is None else float(f"{noise:.6g}")  # tiny values: significant digits
    if role.role == "scores":
        if ref[0].size == 1 or ref.shape[role.class_axis] == 1:
            m.top1_agreement = round(task_metrics.binary_agreement(ref, test), 6)
            return m
        m.top1_agreement = _round(task_metrics.topk_agreement(ref_rows, test_rows, 1))
        m.top5_agreement = _round(task_metrics.topk_agreement(ref_rows, test_rows, 5))
        m.reference_accuracy = _round(task_metrics.label_accuracy(ref_rows, labels))
        m.accuracy = _round(task_metrics.label_accuracy(test_rows, labels))
    elif role.role == "sequence":
        seq = task_metrics.sequence_metrics(ref, test, role.class_axis, role.blank_index, role.alphabet)
        m.timestep_agreement = m.top1_agreement = round(seq["timestep_agreement"], 6)
        m.sequence_match, m.blank_index, m.examples = round(seq["sequence_match"], 6), seq["blank_index"], seq["examples"]
    elif role.role == "map":
        m.map_iou = round(task_metrics.map_iou(ref, test, role.map_threshold), 6)
    elif role.role == "boxes":
        found = box_metrics(ref, test, role.feature_axis, role.box_rows, box_format=role.box_format,
                            score_threshold=role.score_threshold, nms_iou=role.nms_iou)
        m.boxes = {k: round(v, 6) if isinstance(v, float) else v for k, v in found.items()}
    return m


def compare(reference: Sequence[Outputs], candidate: Sequence[Outputs],
            labels: Sequence[Optional[int]], roles: Optional[OutputRoles] = None) -> AccuracyReport:
    """Metrics of `candidate` against `reference`, sample by sample in the same order.

    roles: every output's role and the primary (default: inferred from `reference` alone).
    """
    roles = roles or resolve_roles(reference)
    per_output = {}
    for name in sorted(reference[0]):
        ref = np.stack([np.asarray(r[name], dtype=np.float32) for r in reference])  # metrics sum in float64
        test = np.stack([np.asarray(c[name], dtype=np.float32) for c in candidate])
        per_output[name] = output_metrics(ref, test, roles[name], labels)
    primary = per_output[roles.primary]
    primary.primary = True
    headline = [m for m in per_output.values() if m.role != "state"] or list(per_output.values())
    report = AccuracyReport(
        samples=len(reference), primary_output=roles.primary, primary_role=primary.role,
        top1_agreement=primary.top1_agreement, top5_agreement=primary.top5_agreement,
        accuracy=primary.accuracy, reference_accuracy=primary.reference_accuracy,
        sequence_match=primary.sequence_match, map_iou=primary.map_iou,
        box_f1=primary.boxes and primary.boxes["f1"],
        worst_group=primary.worst_group, worst_group_sqnr_db=primary.worst_group_sqnr_db,
        log_prob_noise=primary.log_prob_noise,
        max_abs_error=max(m.max_abs_error for m in headline), cosine=min(m.cosine for m in headline),
        sqnr_db=primary.sqnr_db, outputs=per_output,
    )
    if report.accuracy is not None:
        report.accuracy_drop_pts = round((report.reference_accuracy - report.accuracy) * 100, 4)
    return report


def near_tie_samples(reference: Sequence[Outputs], roles: Optional[OutputRoles] = None) -> Optional[np.ndarray]:
    """`task_metrics.near_ties` of the primary output, per reference sample; None when it has no
    class axis (scores or sequence with more than one class). roles: default inferred."""
    roles = roles or resolve_roles(reference)
    role = roles[roles.primary]
    if role.role not in ("scores", "sequence") or role.class_axis is None:
        return None
    ref = np.stack([np.asarray(r[roles.primary], np.float32) for r in reference])
    if ref[0].size <= 1 or ref.shape[role.class_axis if role.class_axis < 0 else role.class_axis + 1] < 2:
        return None
    return task_metrics.near_ties(ref, role.class_axis)


def host_latency(make_runner: Callable[[], Runner], feeds: dict[str, np.ndarray], *,
                 threads: int, warmup_runs: int, runs: int) -> LatencySummary:
    """Cold start (load + first inference), then `warmup_runs` and `runs` timed invocations."""
    start = time.perf_counter()
    runner = make_runner()
    runner.set_inputs(feeds)
    runner.invoke()
    cold_ms = (time.perf_counter() - start) * 1000
    for _ in range(warmup_runs):
        runner.invoke()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        runner.invoke()
        samples.append((time.perf_counter() - t0) * 1000)
    return summarize_latencies(samples, warmup_runs=warmup_runs, threads=threads, cold_start_ms=cold_ms)
