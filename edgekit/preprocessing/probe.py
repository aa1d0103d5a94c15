"""Probe: which common pixel preprocessing makes the FLOAT model right on labelled samples.

Candidates: raw 0..255, [0, 1], [-1, 1], ImageNet mean/std on [0, 1] and Caffe-style BGR mean
subtraction, each in RGB and BGR order (grayscale inputs: the first three). Fields the user gave
are never varied: each candidate is completed with them. Images are decoded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from pydantic import ValidationError

from edgekit.calibration.preprocess import decode_image, normalize_image
from edgekit.recipe.schema import Preprocess

MAX_PROBE_SAMPLES = 64
IMAGENET = {"scale": 1 / 255, "offset": 0.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
CAFFE = {"scale": 1.0, "offset": 0.0, "mean": [103.939, 116.779, 123.68], "std": [1.0, 1.0, 1.0]}
RANGE_CANDIDATES: list[tuple[str, dict]] = [
    ("raw 0..255", {"scale": 1.0, "offset": 0.0, "mean": None, "std": None}),
    ("[0, 1]", {"scale": 1 / 255, "offset": 0.0, "mean": None, "std": None}),
    ("[-1, 1]", {"scale": 2 / 255, "offset": -1.0, "mean": None, "std": None}),
    ("ImageNet mean/std", IMAGENET),
    ("Caffe BGR mean", CAFFE),
]
PROBED = ("scale", "offset", "mean", "std", "color")


@dataclass
class Candidate:
    name: str
    preprocess: Preprocess
    accuracy: Optional[float] = None

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "accuracy": self.accuracy,
                **{k: getattr(self.preprocess, k) for k in PROBED}}


def candidates(base: Preprocess, channels: int) -> list[Candidate]:
    """Every candidate as it would run: base's layout/resize, the candidate's range and colour."""
    colors = ["rgb", "bgr"] if channels == 3 else ["grayscale"]
    out = []
    for range_name, fields in RANGE_CANDIDATES:
        if fields["mean"] is not None and channels != 3:
            continue
        for color in (["bgr"] if fields is CAFFE and channels == 3 else colors):
            values = {**base.model_dump(), **fields, "color": color}
            out.append(Candidate(f"{range_name} {color}", Preprocess.model_validate(values)))
    return out


def with_user_values(candidate: Candidate, user: dict[str, Any]) -> Optional[Candidate]:
    """The candidate completed with the fields the user gave (None when they contradict each other)."""
    if not user:
        return candidate
    try:
        pp = Preprocess.model_validate({**candidate.preprocess.model_dump(), **user})
    except ValidationError:
        return None
    return Candidate(candidate.name, pp)


def class_scores(outputs: dict[str, np.ndarray], num_classes: int) -> Optional[str]:
    """The output that holds one score per class ([1, C] or [C], C >= num_classes), first by name."""
    for name in sorted(outputs):
        shape = np.shape(outputs[name])
        if 1 <= len(shape) <= 2 and (len(shape) == 1 or shape[0] == 1) and shape[-1] >= max(num_classes, 2):
            return name
    return None


def top1_accuracy(outputs: list[dict[str, np.ndarray]], labels: list[int]) -> Optional[float]:
    """Share of samples whose class-score argmax is the label (None: no class-score output)."""
    if not outputs:
        return None
    name = class_scores(outputs[0], max(labels) + 1)
    if name is None:
        return None
    hits = [int(np.argmax(np.asarray(o[name]).reshape(-1)) == label) for o, label in zip(outputs, labels)]
    return float(np.mean(hits))


def run_probe(cands: list[Candidate], paths: list, labels: list[int], spec, reference: Callable) -> None:
    """Fill each candidate's float accuracy on the labelled images (decoded once)."""
    decoded: dict[tuple, list[np.ndarray]] = {}
    measured: dict[str, Optional[float]] = {}
    for cand in cands:
        pp = cand.preprocess
        if pp.model_dump_json() in measured:
            cand.accuracy = measured[pp.model_dump_json()]
            continue
        key = (pp.color == "grayscale", pp.resize, pp.resize_method)
        if key not in decoded:
            decoded[key] = [decode_image(p, spec, pp) for p in paths]
        outputs = [reference({spec.name: normalize_image(pixels, spec, pp)}) for pixels in decoded[key]]
        cand.accuracy = measured[pp.model_dump_json()] = top1_accuracy(outputs, labels)
