"""`int8.bias_correction: auto | on`: keep the bias-corrected INT8 model where it measures better.

on: keep it; auto: keep it only when it scores higher on the held-out samples (accuracy with
labels, else top-1 agreement, then SQNR: the calibration-method ranking).
"""

from __future__ import annotations

import math

from edgekit.validate.evaluate import AccuracyReport, compare


def score(acc: AccuracyReport) -> tuple:
    """Higher is better: (accuracy, top-1 agreement, SQNR)."""
    sqnr = math.inf if acc.sqnr_db is None else acc.sqnr_db
    return (acc.accuracy or 0.0, acc.top1_agreement or 0.0, sqnr)


def keep_better(plain, corrected, feeds, reference, labels, roles=None, *, mode: str = "auto") -> dict:
    """{"mode", "applied", "candidates": {"plain"|"corrected": metrics}}; plain and corrected are
    runners (`.run(feed) -> outputs`) of the two INT8 models."""
    scores = {name: compare(reference, [runner.run(f) for f in feeds], labels, roles)
              for name, runner in (("plain", plain), ("corrected", corrected))}
    applied = mode == "on" or score(scores["corrected"]) > score(scores["plain"])
    return {"mode": mode, "applied": applied,
            "candidates": {k: {"accuracy": a.accuracy, "top1_agreement": a.top1_agreement, "sqnr_db": a.sqnr_db}
                           for k, a in scores.items()}}
