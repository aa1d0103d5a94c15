"""`edgekit debug`: per-layer INT8 error, measured sensitivity, calibration checks, and (with a
budget) the float fallback, for one model and one target, written atomically to OUT.

OUT holds debug.json (schema_version 1), debug.md, debug.html and, with a budget, the chosen
model (model_int8_fallback.tflite / .onnx). A budget that cannot be met raises GateFailed
(exit 10) after OUT is complete.
"""

from __future__ import annotations

import functools
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import edgekit
from edgekit.calibration.checks import calibration_warnings
from edgekit.calibration.dataset import load_dataset
from edgekit.calibration.shape_hint import shape_from_calibration
from edgekit.debug.confirm import split_for_confirmation
from edgekit.debug.fallback import SENSITIVITY_SAMPLES, raise_if_unmet, run_fallback
from edgekit.debug.parallel import evaluate_many, ladder_executor
from edgekit.debug.scoring import Budget, Evaluator
from edgekit.debug.sensitivity import measure_sensitivity
from edgekit.errors import UsageError
from edgekit.executor import LazyExecutor
from edgekit.fsutil import atomic_output_dir, naming_user_paths, write_json_atomic, write_text_atomic
from edgekit.model.checks import check_model_path
from edgekit.recipe.schema import Recipe

CULPRIT_SHARE = 0.1  # a culprit's sensitivity is at least this share of the worst layer's
CULPRIT_NOISE = 0.01  # ... and it alone causes/removes at least 1% output noise


def culprits(ranking) -> list[str]:
    """Layers that explain most of the output error (see CULPRIT_SHARE / CULPRIT_NOISE)."""
    top = max((r.score for r in ranking), default=0.0)
    return [r.layer for r in ranking if r.score >= max(CULPRIT_NOISE, CULPRIT_SHARE * top)]


def _document(model_path, target, backend, int8_acc, errors, ranking, warnings, fallback, samples) -> dict:
    score = {r.node: r for r in ranking}
    bad = set(culprits(ranking))
    layers = []
    for error in errors:
        item = error.to_dict()
        sens = score.get(error.node)
        item["sensitivity"] = sens.score if sens else None
        flags = ["explains output error"] if error.layer in bad and sens and sens.layer in bad else []
        if error.scale_outlier:
            flags.append(f"scale outlier (channel range x{error.channel_range_ratio:g})")
        if error.clipped_fraction() > 0.25:
            flags.append("held-out range clipped")
        item["flags"] = flags
        layers.append(item)
    return {
        "schema_version": 1,
        "edgekit_version": edgekit.__version__,
        "model": str(model_path),
        "target": target,
        "samples": samples,
        "int8": int8_acc.model_dump(mode="json") | {"bytes": len(backend.build())},
        "layers": layers,
        "ranking": [r.to_dict() for r in ranking],
        "culprits": [r.layer for r in ranking if r.layer in bad],
        "calibration_warnings": warnings,
        "fallback": fallback.to_dict() if fallback else None,
    }


def run_debug(model_path: str | Path, out: str | Path, recipe: Recipe, *, target: Optional[str] = None,
              budget: Optional[Budget] = None, trust_model: bool = False,
              on_step: Callable[[str], None] = lambda s: None, jobs: int | None = None,
              ray: Optional[str] = None) -> dict:
    """Analyse `model_path` for `target` [default: the model format's own]; write OUT; return the
    document. The fallback's limits (most float layers, time budget) are the recipe's `fallback:`.
    jobs: lanes for the search's candidates, this process and jobs - 1 workers [default: the core
    count; 1: in this process alone]; ray: a Ray cluster for them instead ("auto" or an address). Same results either way.

    The model goes through the same source and Target as compress (`Target.selective`), so the
    nodes named here are the ones compress's fallback keeps in float.
    """
    from edgekit import backends, sources
    from edgekit.backends.base import BuildContext

    if recipe.calibration.source is None:
        raise UsageError("edgekit debug needs calibration data: pass --calibration DIR")
    model_file = check_model_path(model_path, trust_model)
    target = backends.resolve_targets([target] if target else [], model_file.format)[0]
    start = time.monotonic()
    with (naming_user_paths(model_file.path), tempfile.TemporaryDirectory(prefix="edgekit-debug-") as work,
          atomic_output_dir(out) as stage):
        on_step("loading model")
        source = sources.prepare(model_file, Path(work), recipe.input_shapes, trust_model,
                                 functools.partial(shape_from_calibration, recipe), recipe.int8.equalize)
        recipe = _resolved(recipe, source, on_step)
        on_step("validating calibration data")
        data = load_dataset(recipe, source.inputs)
        ctx = BuildContext(stage=stage, workdir=Path(work), on_step=on_step)
        backend = backends.get(target).selective(source, data.calibration_factory(), recipe, ctx)
        if backend is None:
            raise UsageError(f"--target {target}: this target keeps no layer in float, so there is nothing to debug")
        smoothing = getattr(backend, "smoothing", None)
        try:
            with LazyExecutor(jobs, ray) as executor:
                document, fallback = _analyse(backend, data, source.reference, model_file.path, target, budget,
                                              recipe.fallback, start + recipe.fallback.time_budget_s, on_step,
                                              executor)
        finally:
            backend.close()
        # as compress: a .keras model is equalized before export, the ONNX graph after fusion
        document["equalization"] = {"mode": recipe.int8.equalize, "keras_pairs": list(source.equalization)}
        if smoothing is not None:  # the fused ONNX graph's, as compress smooths it
            document["smoothing"] = {"mode": recipe.int8.smooth, "tensors": smoothing}
        on_step("writing report")
        from edgekit.debug.report import render_html, render_markdown

        write_json_atomic(stage / "debug.json", document)
        write_text_atomic(stage / "debug.md", render_markdown(document))
        write_text_atomic(stage / "debug.html", render_html(document))
        if fallback is not None:
            (stage / f"model_int8_fallback{backend.suffix}").write_bytes(fallback.model)
    if fallback is not None:
        raise_if_unmet(fallback, Path(out) / "debug.json")
    return document


def _analyse(backend, data, reference, model_path, target, budget, fallback_settings, deadline, on_step, executor):
    feeds = data.validation_feeds
    ref_outputs = [reference(f) for f in feeds]
    evaluator = Evaluator(feeds, ref_outputs, data.labels)
    on_step("validating full INT8")
    int8_acc = evaluator.accuracy(backend, backend.build())
    on_step("per-layer error")
    errors = backend.layer_errors(feeds)
    remaining = deadline - time.monotonic()
    subset = evaluator.subset(SENSITIVITY_SAMPLES)  # as compress's search ranks: the same order, the same layers
    ranking, _ = measure_sensitivity(backend, subset, deadline=time.monotonic() + remaining / 2, on_step=on_step,
                                     evaluate_many=evaluate_many(backend, subset, executor, data.calibration_factory()))
    on_step("checking calibration data")
    warnings = calibration_warnings(data.calibration_factory()(), errors)
    fallback = ladder = None
    searched, confirm = split_for_confirmation(evaluator, fallback_settings.confirm_fraction)
    if budget is not None and hasattr(backend, "ladder"):  # the precision ladder, as compress runs it
        from edgekit.debug.ladder import search_ladder

        fallback, ladder = search_ladder(backend.ladder(), searched, budget, on_step=on_step,
                                         max_float_layers=fallback_settings.max_float_layers,
                                         time_budget_s=max(1.0, deadline - time.monotonic()),
                                         executor=ladder_executor(executor), confirm=confirm)
    elif budget is not None:
        fallback = run_fallback(backend, searched, budget, ranking=ranking, on_step=on_step,
                                max_float_layers=fallback_settings.max_float_layers,
                                time_budget_s=max(1.0, deadline - time.monotonic()), confirm=confirm)
    document = _document(model_path, target, backend, int8_acc, errors, ranking, warnings, fallback, len(feeds))
    if ladder is not None:
        document["ladder"] = ladder
    return document, fallback


def _resolved(recipe: Recipe, source, on_step) -> Recipe:
    """The recipe with the preprocessing compress would use for this model and data."""
    from edgekit.preprocessing.resolve import resolve_preprocessing

    on_step("inferring the preprocessing")
    return recipe.model_copy(update={"preprocess": resolve_preprocessing(recipe, frozenset(), source).preprocess})
