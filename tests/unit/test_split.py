"""The calibration/validation split is fixed, disjoint and independent of listing order."""

from __future__ import annotations

import random
from pathlib import Path

from edgekit.calibration.sources import SampleRef
from edgekit.calibration.split import split_samples


def refs(n):
    return [SampleRef(f"img_{i:04d}.png", Path(f"img_{i:04d}.png")) for i in range(n)]


def test_split_is_disjoint_deterministic_and_order_independent():
    samples = refs(500)
    first = split_samples(samples, 0.2, 300, 500)
    shuffled = samples[:]
    random.Random(3).shuffle(shuffled)
    second = split_samples(shuffled, 0.2, 300, 500)
    assert [r.key for r in first.calibration] == [r.key for r in second.calibration]
    assert [r.key for r in first.validation] == [r.key for r in second.validation]
    assert not {r.key for r in first.calibration} & {r.key for r in first.validation}
    assert len(first.calibration) == 300 and 60 < len(first.validation) < 140


def test_adding_samples_never_moves_existing_ones_across_the_split():
    small = split_samples(refs(200), 0.2, 10_000, 10_000)
    big = split_samples(refs(400), 0.2, 10_000, 10_000)
    held_out = {r.key for r in big.validation}
    assert {r.key for r in small.validation} <= held_out
    assert not {r.key for r in small.calibration} & held_out


def test_tiny_sets_still_hold_out_one_sample():
    split = split_samples(refs(2), 0.01, 300, 500)
    assert len(split.calibration) == 1 and len(split.validation) == 1
