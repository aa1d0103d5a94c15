"""A fixed, order-independent split of samples into calibration and held-out validation sets.

Each sample's key is hashed (sha256) to a number in [0, 1): below `validation_fraction` it is
held out. Listing order, file-system order and added files never move other samples.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from edgekit.calibration.sources import SampleRef


@dataclass(frozen=True)
class Split:
    calibration: list[SampleRef]
    validation: list[SampleRef]
    rule: str


def _position(key: str) -> float:
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:13], 16) / 16**13


def split_samples(refs: list[SampleRef], validation_fraction: float, num_calibration: int,
                  max_validation: int) -> Split:
    """Disjoint calibration and validation lists, each ordered by hash position."""
    ranked = sorted(refs, key=lambda r: (_position(r.key), r.key))
    validation = [r for r in ranked if _position(r.key) < validation_fraction]
    calibration = [r for r in ranked if _position(r.key) >= validation_fraction]
    if not validation and len(calibration) > 1:
        validation, calibration = calibration[-1:], calibration[:-1]
    if not calibration and len(validation) > 1:
        calibration, validation = validation[-1:], validation[:-1]
    calibration, validation = calibration[:num_calibration], validation[:max_validation]
    rule = f"sha256(sample key) position < {validation_fraction} -> validation"
    return Split(calibration, validation, rule)
