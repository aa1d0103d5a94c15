"""Confirmation: a budgeted search's choice, validated on held-out samples that no step of it saw.

A search that picks the cheapest of many candidates meeting a budget on one split reports that
split's lucky side of the noise: on the PaddleOCR recognizer the ladder's final model decoded
0.977 of its search lines as float and 0.93 of 100 lines it never saw. So the held-out samples are
split (`split_for_confirmation`): the search decides on the first part and `Confirmer` measures
its choice on the rest (the last `fraction` of the held-out list, which is ordered by hash
position). When the choice misses the budget there, the met steps (ordered by cost) between it
and the cheapest that held (the search may confirm a step it builds on: the ladder's descent
confirms its grid point; else the most conservative met step is confirmed) are bisected for the
cheapest that holds, up to TRIES more confirmations. When none holds, the search did not meet its
budget.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

from edgekit.debug.scoring import Budget, Evaluator

MIN_SAMPLES = 20  # on each side: fewer held-out samples than 2 x 20, no confirmation split
TRIES = 4  # bisection steps between a refuted choice and the cheapest step that held
SHOWN = ("accuracy_drop_pts", "top1_agreement", "sqnr_db", "sequence_match", "map_iou", "box_f1")


def split_for_confirmation(evaluator: Evaluator, fraction: float) -> tuple[Evaluator, Optional[Evaluator]]:
    """(the search's evaluator, the confirmation's or None): the last `fraction` of the samples
    confirm, when both parts get at least MIN_SAMPLES [fraction 0: no confirmation]."""
    total = len(evaluator.feeds)
    count = round(total * fraction)
    if count < MIN_SAMPLES or total - count < MIN_SAMPLES:
        return evaluator, None
    return evaluator.take(0, total - count), evaluator.take(total - count, total)


def passed(step) -> bool:
    """Met on the search's samples and not refuted on the confirmation's."""
    return step.met and (step.confirmation is None or step.confirmation["met"])


def outcome(best, stopped: str) -> tuple[bool, str]:
    """(whether the search met its budget, why it stopped) with its final step `best`: a step met
    on the search's samples but refuted on the confirmation's is not met, and `stopped` says so."""
    if best.met and not passed(best):
        stopped = f"{stopped}; not confirmed on {best.confirmation['samples']} held-out samples the search did not use"
    return passed(best), stopped


def shortfall(step) -> float:
    """The confirmation's shortfall when the step was confirmed, else the search's."""
    return step.shortfall if step.confirmation is None else max(step.shortfall, step.confirmation["shortfall"])


class Confirmer:
    """Measures steps on the confirmation samples. model_of(step): its model bytes (a step's
    backend state restored); evaluator None: every met step passes unconfirmed."""

    def __init__(self, evaluator: Optional[Evaluator], budget: Budget, backend, model_of: Callable,
                 on_step: Callable[[str], None] = lambda s: None):
        self.evaluator, self.budget, self.backend = evaluator, budget, backend
        self.model_of, self.on_step = model_of, on_step
        self.tried = 0

    def confirm(self, step) -> bool:
        """Measure `step` on the confirmation samples once (its `confirmation` record); passed(step)."""
        if self.evaluator is None or not step.met or step.confirmation is not None:
            return passed(step)
        self.on_step(f"confirming a {step.phase} step on {len(self.evaluator.feeds)} unseen held-out samples")
        acc = self.evaluator.accuracy(self.backend, self.model_of(step))
        step.confirmation = {"samples": len(self.evaluator.feeds), "met": self.budget.met(acc),
                             "shortfall": self.budget.shortfall(acc),
                             "accuracy": {k: v for k, v in acc.model_dump(mode="json").items()
                                          if k in SHOWN and v is not None}}
        self.tried += 1
        return passed(step)

    def choose(self, steps: Sequence, cost: Callable):
        """The cheapest met step (`cost(step)`) that holds on the unseen samples (see the module
        docstring), else the confirmed step closest to the budget there; None when nothing was
        confirmed (no confirmation samples, or no met step)."""
        if self.evaluator is None:
            return None
        met = sorted((s for s in steps if s.met), key=cost)
        if met and self.confirm(met[0]):
            return met[0]
        held = [n for n, s in enumerate(met) if s.confirmation is not None and passed(s)]
        if held or len(met) > 1 and self.confirm(met[-1]):
            low, high, left = 0, held[0] if held else len(met) - 1, TRIES  # met[low] missed, met[high] holds
            while high - low > 1 and left:
                middle, left = (low + high) // 2, left - 1
                low, high = (low, middle) if self.confirm(met[middle]) else (middle, high)
            return met[high]
        tried = [s for s in steps if s.confirmation is not None]
        return min(tried, key=shortfall) if tried else None

    def record(self, search: Evaluator) -> Optional[dict]:
        """The report's summary: `search`'s and the confirmation's sample counts, steps confirmed."""
        if self.evaluator is None:
            return None
        return {"search_samples": len(search.feeds), "samples": len(self.evaluator.feeds), "steps_confirmed": self.tried}
