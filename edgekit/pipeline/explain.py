"""`compress --explain-preprocessing`: the inferred, probed and final preprocessing, nothing converted."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Callable

from edgekit.calibration.shape_hint import shape_from_calibration
from edgekit.model.checks import ModelFile, check_model_path
from edgekit.pipeline.isolate import run_isolated
from edgekit.preprocessing.resolve import resolve_preprocessing
from edgekit.recipe.schema import Recipe


def explain_preprocessing(model_path: str | Path, recipe: Recipe, trust_model: bool = False,
                          preprocess_flags: frozenset = frozenset(),
                          on_step: Callable[[str], None] = lambda s: None) -> dict:
    """The report's `preprocessing` section for this model and data (runs in a worker process)."""
    model_file = check_model_path(model_path, trust_model)
    return run_isolated(_explain, model_file, recipe, trust_model, frozenset(preprocess_flags), on_step=on_step)


def _explain(model_file: ModelFile, recipe: Recipe, trust_model: bool, flags: frozenset,
             on_step: Callable[[str], None]) -> dict:
    from edgekit import sources

    with tempfile.TemporaryDirectory(prefix="edgekit-explain-") as work:
        on_step("loading model")
        source = sources.prepare(model_file, Path(work), recipe.input_shapes, trust_model,
                                functools.partial(shape_from_calibration, recipe))
        on_step("inferring the preprocessing")
        return resolve_preprocessing(recipe, flags, source, model_file.path).info()
