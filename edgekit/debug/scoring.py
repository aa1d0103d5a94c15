"""Budgets and the measurement of one built model against the float reference.

A `Budget` holds any of: max accuracy drop in points (needs labels), min top-1 agreement with
the float model (0-1), min output SQNR in dB. `Evaluator` runs a backend's model bytes on the
held-out feeds and returns `compare()`'s AccuracyReport, optionally with host latency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

from edgekit.errors import UsageError
from edgekit.validate.evaluate import AccuracyReport, compare, host_latency
from edgekit.validate.latency import LatencySummary
from edgekit.validate.roles import OutputRoles


@dataclass(frozen=True)
class Budget:
    """What an INT8 model must reach; at least one field set."""

    max_accuracy_drop: Optional[float] = None  # points, 0-100
    min_agreement: Optional[float] = None  # fraction, 0-1
    min_sqnr_db: Optional[float] = None
    min_sequence_match: Optional[float] = None  # fraction, 0-1 (primary output a sequence)
    min_map_iou: Optional[float] = None  # fraction, 0-1 (primary output a map)
    min_box_f1: Optional[float] = None  # fraction, 0-1 (primary output a detector head)

    TASK = (("min_sequence_match", "sequence_match", "a sequence output", "sequence match"),
            ("min_map_iou", "map_iou", "a map output", "map IoU"),
            ("min_box_f1", "box_f1", "a boxes output", "box F1"))

    def __post_init__(self):
        if all(v is None for v in vars(self).values()):
            raise UsageError("a fallback budget needs --max-accuracy-drop, --min-agreement, --min-sqnr, "
                             "--min-sequence-match, --min-map-iou or --min-box-f1")
        if self.max_accuracy_drop is not None and self.max_accuracy_drop < 0:
            raise UsageError("--max-accuracy-drop must be >= 0 points")
        if self.min_agreement is not None and not 0 <= self.min_agreement <= 1:
            raise UsageError("--min-agreement must be a fraction in [0, 1]")

    def shortfall(self, acc: AccuracyReport) -> float:
        """How far `acc` is from the budget (0 = met): accuracy/agreement in points plus SQNR dB."""
        missing = 0.0
        if self.max_accuracy_drop is not None:
            if acc.accuracy_drop_pts is None:
                raise UsageError("--max-accuracy-drop needs labels for the validation samples "
                                 "(labels.csv); use --min-agreement or --min-sqnr instead")
            missing += max(0.0, acc.accuracy_drop_pts - self.max_accuracy_drop)
        if self.min_agreement is not None:
            if acc.top1_agreement is None:
                raise UsageError("--min-agreement needs a classifier output; use --min-sqnr instead")
            missing += max(0.0, (self.min_agreement - acc.top1_agreement) * 100)
        if self.min_sqnr_db is not None:
            sqnr = math.inf if acc.sqnr_db is None else acc.sqnr_db
            missing += max(0.0, self.min_sqnr_db - sqnr)
        for limit_name, field, what, _ in self.TASK:
            limit = getattr(self, limit_name)
            if limit is not None:
                value = getattr(acc, field)
                if value is None:
                    raise UsageError(f"--{limit_name.replace('_', '-')} needs {what} as the primary output "
                                     f"(it is `{acc.primary_output}`, {acc.primary_role})")
                missing += max(0.0, (limit - value) * 100)
        return round(missing, 6)

    def met(self, acc: AccuracyReport) -> bool:
        return self.shortfall(acc) == 0.0

    def describe(self) -> str:
        parts = []
        if self.max_accuracy_drop is not None:
            parts.append(f"accuracy drop <= {self.max_accuracy_drop} pts")
        if self.min_agreement is not None:
            parts.append(f"top-1 agreement >= {self.min_agreement}")
        if self.min_sqnr_db is not None:
            parts.append(f"SQNR >= {self.min_sqnr_db} dB")
        parts += [f"{label} >= {getattr(self, name)}" for name, _, _, label in self.TASK
                  if getattr(self, name) is not None]
        return ", ".join(parts)


CONFIDENCE_Z = 1.96  # the two-sided 95% normal quantile


def confidence(budget: Budget, acc: Mapping, samples: int) -> dict:
    """For each per-sample fraction the budget sets a floor on (top-1 agreement, sequence match):
    {metric: {"value", "limit", "samples", "lower_95"}}, lower_95 being the Wilson score 95% lower
    bound of the true fraction given `value` measured on `samples` held-out samples (acc: an
    AccuracyReport as a dict, a Step's `accuracy`). A search that
    picks among many candidates on few samples can meet its floor by chance: the bound says so."""
    found = {}
    for metric, limit in (("top1_agreement", budget.min_agreement), ("sequence_match", budget.min_sequence_match)):
        value = acc.get(metric)
        if limit is None or value is None or samples <= 0:
            continue
        z2 = CONFIDENCE_Z ** 2
        centre = value + z2 / (2 * samples)
        spread = CONFIDENCE_Z * math.sqrt(max(value * (1 - value), 0.0) / samples + z2 / (4 * samples ** 2))
        found[metric] = {"value": value, "limit": limit, "samples": samples,
                         "lower_95": round((centre - spread) / (1 + z2 / samples), 4)}
    return found


def noise_fraction(acc: AccuracyReport) -> float:
    """Output noise power over signal power (10^(-SQNR/10)); 0 when identical to float."""
    return 0.0 if acc.sqnr_db is None else 10 ** (-acc.sqnr_db / 10)


def ranking_noise(acc: AccuracyReport) -> float:
    """What the ladder's rankings compare: the primary output's log-probability noise on the
    classes in contention when it is a probability output (`AccuracyReport.log_prob_noise`), else
    `noise_fraction`. A near-tie position whose argmax flips dominates the squared error of the
    probabilities (it varies 2-8x between runs of one candidate on the PaddleOCR recognizer), while
    the decision moves with the noise on its contenders."""
    return acc.log_prob_noise if acc.log_prob_noise is not None else noise_fraction(acc)


@dataclass
class Evaluator:
    """Validation feeds, their float reference outputs and labels; measures built models.

    threads: host threads for latency (default 1); warmup_runs/runs: timed invocations
    (default 5/20, enough to see the cost of float layers, not a benchmark).
    """

    feeds: Sequence[dict[str, np.ndarray]]
    reference: Sequence[dict[str, np.ndarray]]
    labels: Sequence[Optional[int]]
    threads: int = 1
    warmup_runs: int = 5
    runs: int = 20
    roles: Optional[OutputRoles] = None  # default: inferred from the reference outputs

    def subset(self, count: int) -> "Evaluator":
        """The same evaluator on the first `count` samples (cheaper, for relative rankings)."""
        return self.take(0, count)

    def take(self, start: int, stop: int) -> "Evaluator":
        """The same evaluator on samples [start, stop)."""
        return Evaluator(self.feeds[start:stop], self.reference[start:stop], self.labels[start:stop],
                         self.threads, self.warmup_runs, self.runs, self.roles)

    def accuracy(self, backend, model: bytes) -> AccuracyReport:
        runner = backend.runner(model, self.threads)
        return self.compare([runner.run(f) for f in self.feeds])

    def compare(self, outputs: Sequence[dict[str, np.ndarray]]) -> AccuracyReport:
        """`outputs` (one per feed, in order) against the reference."""
        return compare(self.reference, outputs, self.labels, self.roles)

    def ranking_noise(self, outputs: Sequence[dict[str, np.ndarray]]) -> float:
        """`ranking_noise` of `outputs` (one per feed) against the reference."""
        return ranking_noise(self.compare(outputs))

    def latency(self, backend, model: bytes) -> LatencySummary:
        return host_latency(lambda: backend.runner(model, self.threads), self.feeds[0], threads=self.threads,
                            warmup_runs=self.warmup_runs, runs=self.runs)
