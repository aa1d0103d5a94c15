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
from edgekit.validate.task_metrics import label_accuracy

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
    nll: Optional[float] = None  # mean negative log-likelihood of the label (softmax of the scores)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "accuracy": self.accuracy, "nll": self.nll,
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


def class_scores(outputs: dict[str, np.ndarray], num_classes: int, preferred: Optional[str] = None) -> Optional[str]:
    """The output that holds one score per class ([1, C] or [C], C >= num_classes): `preferred`
    (the primary output) when it is one, else the first by name."""
    for name in ([preferred] if preferred in outputs else []) + sorted(outputs):
        shape = np.shape(outputs[name])
        if 1 <= len(shape) <= 2 and (len(shape) == 1 or shape[0] == 1) and shape[-1] >= max(num_classes, 2):
            return name
    return None


def top1_accuracy(outputs: list[dict[str, np.ndarray]], labels: list[int],
                  preferred: Optional[str] = None) -> Optional[float]:
    """Share of samples whose class-score argmax is the label (None: no class-score output)."""
    return label_scores(outputs, labels, preferred)[0]


def label_scores(outputs: list[dict[str, np.ndarray]], labels: list[int],
                 preferred: Optional[str] = None) -> tuple[Optional[float], Optional[float]]:
    """(top-1 accuracy, mean NLL of the label) over the class-score output; (None, None) without one.

    Scores that already are probabilities (non-negative, summing to 1) are used as they are,
    anything else goes through a softmax.
    """
    name = class_scores(outputs[0], max(labels) + 1, preferred) if outputs else None
    if name is None:
        return None, None
    scores = np.stack([np.asarray(o[name], np.float64).reshape(-1) for o in outputs])
    if not (np.all(scores >= 0) and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3)):
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores /= scores.sum(axis=1, keepdims=True)
    picked = scores[np.arange(len(labels)), np.asarray(labels)]
    return label_accuracy(scores, labels), float(np.mean(-np.log(np.clip(picked, 1e-12, 1.0))))


def run_probe(cands: list[Candidate], paths: list, labels: list[int], spec, reference: Callable) -> None:
    """Fill each candidate's float accuracy on the labelled images (decoded once)."""
    decoded: dict[tuple, list[np.ndarray]] = {}
    measured: dict[str, tuple] = {}
    for cand in cands:
        pp = cand.preprocess
        if pp.model_dump_json() in measured:
            cand.accuracy, cand.nll = measured[pp.model_dump_json()]
            continue
        key = (pp.color == "grayscale", pp.resize, pp.resize_method)
        if key not in decoded:
            decoded[key] = [decode_image(p, spec, pp) for p in paths]
        outputs = [reference({spec.name: normalize_image(pixels, spec, pp)}) for pixels in decoded[key]]
        cand.accuracy, cand.nll = measured[pp.model_dump_json()] = label_scores(outputs, labels)


def pick(current: Candidate, runnable: list[Candidate], margin: float) -> Candidate:
    """The candidate to use: among those within `margin` of the best accuracy, the lowest NLL;
    `current` stays unless that one is clearly better (more accurate by > margin, or NLL < 0.8x)."""
    top = max(c.accuracy for c in runnable)
    close = [c for c in runnable if c.accuracy >= top - margin]
    best = min(close, key=lambda c: c.nll)
    if best is current or current.accuracy < top - margin or best.nll < 0.8 * current.nll:
        return best
    return current
