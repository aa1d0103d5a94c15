"""Validate an artifact against the float reference on held-out samples, and time it on the host."""

from __future__ import annotations

import math
import time
from typing import Callable, Optional, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from edgekit.runtime.base import Runner
from edgekit.validate import metrics
from edgekit.validate.latency import LatencySummary, summarize_latencies

Outputs = dict[str, np.ndarray]


class OutputMetrics(BaseModel):
    """Error of one output over all held-out samples. sqnr_db null = identical to the reference."""

    model_config = ConfigDict(extra="forbid")
    max_abs_error: float
    cosine: float
    sqnr_db: Optional[float]


class AccuracyReport(BaseModel):
    """Agreement with the float reference (and accuracy when labels exist), in [0, 1]."""

    model_config = ConfigDict(extra="forbid")
    samples: int
    top1_agreement: Optional[float] = None
    accuracy: Optional[float] = None
    reference_accuracy: Optional[float] = None
    accuracy_drop_pts: Optional[float] = None
    max_abs_error: float
    cosine: float
    sqnr_db: Optional[float]
    outputs: dict[str, OutputMetrics]


def classifier_output(outputs: Outputs) -> Optional[str]:
    """The first output that looks like class scores (`metrics.is_class_scores`), or None."""
    for name in sorted(outputs):
        if metrics.is_class_scores(outputs[name].shape):
            return name
    return None


def _finite(value: float) -> Optional[float]:
    return None if math.isinf(value) or math.isnan(value) else round(value, 6)


def compare(reference: Sequence[Outputs], candidate: Sequence[Outputs],
            labels: Sequence[Optional[int]]) -> AccuracyReport:
    """Metrics of `candidate` against `reference`, sample by sample in the same order."""
    per_output = {}
    for name in sorted(reference[0]):
        ref = np.concatenate([r[name].reshape(1, -1) for r in reference])
        test = np.concatenate([c[name].reshape(1, -1) for c in candidate])
        per_output[name] = OutputMetrics(
            max_abs_error=round(metrics.max_abs_error(ref, test), 6),
            cosine=round(metrics.cosine(ref, test), 6),
            sqnr_db=_finite(metrics.sqnr_db(ref, test)),
        )
    primary = classifier_output(reference[0]) or sorted(reference[0])[0]
    report = AccuracyReport(
        samples=len(reference),
        max_abs_error=max(m.max_abs_error for m in per_output.values()),
        cosine=min(m.cosine for m in per_output.values()),
        sqnr_db=per_output[primary].sqnr_db,
        outputs=per_output,
    )
    if classifier_output(reference[0]):
        report.top1_agreement = round(metrics.top1_agreement(
            [r[primary] for r in reference], [c[primary] for c in candidate]), 6)
        one_vector = sum(d > 1 for d in reference[0][primary].shape) == 1  # labels: one class per sample
        if one_vector and labels and all(label is not None for label in labels):
            ref_acc = _accuracy([r[primary] for r in reference], labels)
            acc = _accuracy([c[primary] for c in candidate], labels)
            report.reference_accuracy = round(ref_acc, 6)
            report.accuracy = round(acc, 6)
            report.accuracy_drop_pts = round((ref_acc - acc) * 100, 4)
    return report


def _accuracy(scores: Sequence[np.ndarray], labels: Sequence[int]) -> float:
    hits = sum(int(np.argmax(s.reshape(-1))) == int(y) for s, y in zip(scores, labels))
    return hits / len(labels)


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
