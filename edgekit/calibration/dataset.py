"""The samples of one run: discovered, split into calibration | validation, validated up front."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from edgekit.calibration.sources import CalibrationSource
from edgekit.calibration.split import Split, split_samples
from edgekit.errors import CalibrationDataError, UsageError
from edgekit.recipe.schema import Recipe
from edgekit.runtime.base import TensorSpec

log = logging.getLogger("edgekit")
SYNTHETIC_SAMPLES = 32


@dataclass
class Dataset:
    """Calibration and validation samples (validation feeds are kept: at most a few hundred)."""

    source: Optional[CalibrationSource]
    split: Split
    validation_feeds: list[dict[str, np.ndarray]]
    labels: list[Optional[int]]
    synthetic: bool
    notes: list[str] = field(default_factory=list)

    def calibration_factory(self):
        if self.source is None or not self.split.calibration:
            return None
        return lambda: self.source.stream(self.split.calibration)


def load_dataset(recipe: Recipe, inputs: list[TensorSpec]) -> Dataset:
    """Discover, split and validate every selected sample up front (errors name the file)."""
    cal = recipe.calibration
    if cal.source is None:
        if "int8" in recipe.precisions:
            raise UsageError("INT8 needs calibration data: pass --calibration DIR (or calibration.source)")
        rng = np.random.default_rng(0)
        feeds = [{s.name: rng.random(s.shape, dtype=np.float32).astype(s.dtype) for s in inputs}
                 for _ in range(SYNTHETIC_SAMPLES)]
        split = Split([], [], "no data: seeded random validation inputs")
        return Dataset(None, split, feeds, [None] * len(feeds), True)
    from edgekit.calibration.checks import calibration_warnings

    source = CalibrationSource(cal.source, inputs, recipe.preprocess, cal.labels)
    split = split_samples(source.refs, cal.validation_fraction, cal.num_samples, cal.max_validation_samples)
    # One pass loads (and so validates) every calibration sample before any conversion starts, and
    # measures whether the set looks representative (too few samples, near-constant inputs).
    notes = calibration_warnings(source.stream(split.calibration))
    for note in notes:
        log.warning("%s", note)
    feeds = list(source.stream(split.validation))
    if not split.validation or ("int8" in recipe.precisions and not split.calibration):
        raise CalibrationDataError(f"holds {len(source.refs)} usable sample(s): at least 2 are needed, since "
                                   "calibration and held-out validation samples never overlap", cal.source)
    return Dataset(source, split, feeds, [r.label for r in split.validation], False, notes)
