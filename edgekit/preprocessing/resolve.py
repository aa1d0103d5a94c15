"""One image preprocessing per run, each value with its origin: flag > recipe > model > default,
then (with labels) the probe, then the float sanity check.

Origins in the report: `flag`, `recipe` (the user's: never overridden, still checked), `model`
(inferred, see infer.py), `probe` (a candidate that made the float model clearly more accurate on
labelled samples), `default`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pydantic import ValidationError

from edgekit.calibration.preprocess import CHANNELS
from edgekit.calibration.sources import IMAGE_SUFFIXES, CalibrationSource, sample_files
from edgekit.calibration.split import split_samples
from edgekit.errors import CalibrationDataError
from edgekit.preprocessing.infer import infer_from_model
from edgekit.preprocessing.probe import (MAX_PROBE_SAMPLES, PROBED, Candidate, candidates, pick, run_probe,
                                         top1_accuracy, with_user_values)
from edgekit.recipe.schema import Preprocess, Recipe

log = logging.getLogger("edgekit")
FIELDS = ("scale", "offset", "mean", "std", "color", "layout", "resize", "resize_method")
CHANCE_FACTOR = 1.5


@dataclass
class Resolution:
    """The preprocessing used, where each value came from, and what was measured to choose it."""

    preprocess: Preprocess
    origins: dict[str, str]
    evidence: list[str] = field(default_factory=list)
    inside_model: Optional[str] = None
    probe: Optional[dict] = None
    best: Optional[Candidate] = None
    images: bool = True

    def info(self) -> dict[str, Any]:
        return {"applies": self.images, "values": self.preprocess.model_dump(mode="json"),
                "origins": self.origins, "evidence": self.evidence, "inside_model": self.inside_model,
                "probe": self.probe}


def describe(pp: Preprocess) -> str:
    """'scale=0.00392, offset=0, color=rgb, layout=nhwc' (+ mean/std when set)."""
    parts = [f"scale={pp.scale:.3g}", f"offset={pp.offset:g}"]
    if pp.mean is not None:
        parts += [f"mean={[round(m, 4) for m in pp.mean]}", f"std={[round(s, 4) for s in pp.std]}"]
    return ", ".join(parts + [f"color={pp.color}", f"layout={pp.layout}"])


def user_origins(pp: Preprocess, flags: frozenset[str]) -> dict[str, str]:
    """The fields the user set: 'flag' or 'recipe'."""
    return {f: ("flag" if f in flags else "recipe") for f in FIELDS if f in pp.model_fields_set}


def resolve_preprocessing(recipe: Recipe, flags: frozenset[str], source, model_path=None) -> Resolution:
    """The run's preprocessing for `source` (a PreparedSource; model_path: the user's model file)."""
    pp = recipe.preprocess
    given = user_origins(pp, flags)
    inferred = infer_from_model(source, model_path)
    origins, values = dict(given), {f: getattr(pp, f) for f in given}
    for name, value in inferred.values.items():
        if name not in given and not ({"mean", "std"} & set(given) and name in ("mean", "std")):
            values[name], origins[name] = value, "model"
    try:
        chosen = Preprocess.model_validate({**pp.model_dump(), **values})
    except ValidationError as err:
        raise CalibrationDataError(f"the model's declared preprocessing is not usable: {err.errors()[0]['msg']}",
                                   recipe.calibration.source) from None
    origins = {f: origins.get(f, "default") for f in FIELDS}
    resolution = Resolution(chosen, origins, inferred.evidence, inferred.inside_model)
    if recipe.calibration.source is not None and len(source.inputs) == 1:
        _probe(resolution, recipe, {f: getattr(pp, f) for f in given if f in PROBED}, source)
    return resolution


def _probe(res: Resolution, recipe: Recipe, user: dict, source) -> None:
    cal = recipe.calibration
    if any(path.suffix.lower() not in IMAGE_SUFFIXES for path in sample_files(Path(cal.source))):
        res.images, res.origins = False, {}
        return
    data = CalibrationSource(cal.source, source.inputs, res.preprocess, cal.labels)
    split = split_samples(data.refs, cal.validation_fraction, cal.num_samples, cal.max_validation_samples)
    labelled = [r for r in split.validation if r.label is not None][:MAX_PROBE_SAMPLES]
    if not labelled:
        return
    spec, labels, paths = source.inputs[0], [r.label for r in labelled], [r.path for r in labelled]
    current = Candidate("as resolved", res.preprocess)
    pure = candidates(res.preprocess, CHANNELS[res.preprocess.color])
    unique: dict[str, Candidate] = {}
    for cand in [current, *(with_user_values(p, user) for p in pure)]:
        if cand is not None:
            unique.setdefault(cand.preprocess.model_dump_json(), cand)
    run_probe([*unique.values(), *pure], paths, labels, spec, source.reference)
    if current.accuracy is None:
        return
    margin = max(0.05, 2.0 / len(labelled))  # a 64-sample accuracy is +-3 pts; the NLL decides within it
    best = pick(current, list(unique.values()), margin)
    res.best = pick(pure[0], pure, margin)
    if best is not current:
        for name in PROBED:
            if getattr(best.preprocess, name) != getattr(res.preprocess, name):
                res.origins[name] = "probe"
        res.preprocess = best.preprocess
        res.evidence.append(f"probe: {best.name} scores {best.accuracy:.1%} (label NLL {best.nll:.3f}) vs "
                            f"{current.accuracy:.1%} ({current.nll:.3f}) as inferred: taken")
    if res.best is not None and res.best.accuracy is not None and \
            res.best.accuracy > (best.accuracy or 0.0) + margin and user:
        log.warning("preprocessing: with the values you gave the float model scores %.1f%% on %d labelled images, "
                    "'%s' scores %.1f%%: check %s", 100 * (best.accuracy or 0.0), len(labelled), res.best.name,
                    100 * res.best.accuracy, ", ".join(sorted(user)))
    res.probe = {"samples": len(labelled), "as_resolved_accuracy": current.accuracy, "as_resolved_nll": current.nll,
                 "chosen": describe(res.preprocess), "candidates": [c.summary() for c in pure]}


def check_float_accuracy(res: Resolution, labels: list[Optional[int]], ref_outputs: list[dict],
                         origin, allow: bool, primary: Optional[str] = None) -> Optional[dict]:
    """The float model's accuracy on the labelled validation samples vs chance; exit 4 if not 1.5x above
    (on the `primary` output when it holds class scores, else the first class-score output by name).

    Returns {"accuracy", "chance", "classes", "samples"} (None without labels or class scores).
    Without labels (image data): one warning that the preprocessing is unverified.
    """
    pairs = [(o, label) for o, label in zip(ref_outputs, labels) if label is not None]
    if not pairs:
        if res.images and set(res.origins.values()) - {"flag", "recipe"}:
            log.warning("preprocessing is unverified (no labels): %s, from %s. Add labels.csv (filename,label) "
                        "to the data directory to verify it, or give --scale/--offset/--mean/--std/--color",
                        describe(res.preprocess), _origin_text(res.origins))
        return None
    outputs, values = [o for o, _ in pairs], [label for _, label in pairs]
    classes = len(set(values))
    accuracy = top1_accuracy(outputs, values, primary)
    if accuracy is None or classes < 2:
        return None
    chance = 1.0 / classes
    result = {"accuracy": accuracy, "chance": chance, "classes": classes, "samples": len(values)}
    if accuracy < CHANCE_FACTOR * chance and not allow:
        used = describe(res.preprocess) if res.images else "arrays as stored"
        best = (f"; best candidate: {res.best.name} {res.best.accuracy:.1%}"
                if res.best is not None and res.best.accuracy is not None else "")
        raise CalibrationDataError(
            f"the float model scores {accuracy:.1%} on {len(values)} labelled validation samples, chance is "
            f"{chance:.1%} ({classes} classes): preprocessing {used} looks wrong{best} "
            "(--allow-low-float-accuracy builds anyway)", origin)
    return result


def _origin_text(origins: dict[str, str]) -> str:
    by_origin: dict[str, list[str]] = {}
    for name, origin in origins.items():
        if name in PROBED:
            by_origin.setdefault(origin, []).append(name)
    return "; ".join(f"{o}: {', '.join(names)}" for o, names in sorted(by_origin.items()))
