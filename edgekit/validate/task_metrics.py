"""Task metrics of one output role, on stacked arrays [samples, *shape] of float and candidate.

Pure numpy. Scores: top-1/top-5 agreement on the class axis; sequence: per-timestep agreement
and CTC greedy-decoded exact match; map: IoU of the thresholded maps; every output: SQNR per
channel group along its feature axis (so one destroyed row group cannot hide behind others).
`near_ties` marks the samples whose float decision is a near tie (any noise may flip it).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from edgekit.validate import metrics


def class_rows(x: np.ndarray, class_axis: int) -> np.ndarray:
    """[rows, classes]: every position's class vector (class axis given on the per-sample shape)."""
    axis = class_axis if class_axis < 0 else class_axis + 1
    moved = np.moveaxis(x, axis, -1)
    return moved.reshape(-1, moved.shape[-1])


NEAR_TIE = 0.05  # top two classes closer than this in log-probability (or logit): a near tie


def near_ties(ref: np.ndarray, class_axis: int, margin: float = NEAR_TIE) -> np.ndarray:
    """Per sample of stacked float scores [samples, ...]: whether some position's top two classes
    are less than `margin` (default NEAR_TIE, 0.05) apart in natural-log probability (rows that
    sum to 1) or in value (logits). Quantization noise of any size may flip such a decision."""
    from edgekit.validate.roles import probability_axis

    rows = class_rows(np.asarray(ref, np.float64), class_axis)
    if rows.shape[1] < 2:
        return np.zeros(len(ref), bool)
    if probability_axis(rows, [1]) is not None:
        rows = np.log(np.maximum(rows, 1e-30))
    top = np.partition(rows, -2, axis=1)[:, -2:]
    return (top[:, 1] - top[:, 0] < margin).reshape(len(ref), -1).any(axis=1)


def binary_agreement(ref: np.ndarray, test: np.ndarray) -> float:
    """Share of values on the same side of 0.5 (probabilities) or 0 (logits)."""
    threshold = 0.5 if ref.min() >= 0 and ref.max() <= 1 else 0.0
    return float(np.mean((ref > threshold) == (test > threshold)))


def topk_agreement(ref_rows: np.ndarray, test_rows: np.ndarray, k: int) -> Optional[float]:
    """Share of rows whose float top-1 class is among the candidate's top k (None if k >= classes)."""
    if k >= ref_rows.shape[1] and k > 1:
        return None
    best = ref_rows.argmax(axis=1)
    if k == 1:
        return float(np.mean(best == test_rows.argmax(axis=1)))
    top = np.argpartition(-test_rows, k - 1, axis=1)[:, :k]
    return float(np.mean((top == best[:, None]).any(axis=1)))


def label_accuracy(rows: np.ndarray, labels: Sequence[Optional[int]]) -> Optional[float]:
    """Accuracy of one class vector per sample against integer labels (None without labels)."""
    if not labels or any(label is None for label in labels) or rows.shape[0] != len(labels):
        return None
    return float(np.mean(rows.argmax(axis=1) == np.asarray(labels, dtype=np.int64)))


def ctc_greedy(classes: np.ndarray, blank: int) -> tuple[int, ...]:
    """CTC greedy decode of per-timestep class ids: collapse repeats, drop the blank."""
    out, prev = [], None
    for c in classes.tolist():
        if c != prev and c != blank:
            out.append(c)
        prev = c
    return tuple(out)


def infer_blank(ids: np.ndarray) -> int:
    """The most frequent per-timestep class of the float model: CTC's blank."""
    return int(np.bincount(ids.ravel()).argmax())


def sequence_ids(x: np.ndarray, class_axis: int) -> np.ndarray:
    """[samples, T] argmax class ids of [samples, N, T, C]-like outputs (batch 1 folded in)."""
    axis = class_axis if class_axis < 0 else class_axis + 1
    ids = np.moveaxis(x, axis, -1).argmax(axis=-1)
    return ids.reshape(ids.shape[0], -1)


def decode_text(seq: tuple[int, ...], blank: int, alphabet: Optional[str]) -> str:
    """Class ids as text: `alphabet` holds the non-blank classes in order; ids otherwise."""
    if alphabet is None:
        return " ".join(map(str, seq))
    return "".join(alphabet[c - (c > blank)] if 0 <= c - (c > blank) < len(alphabet) else "?" for c in seq)


def sequence_metrics(ref: np.ndarray, test: np.ndarray, class_axis: int, blank: Optional[int],
                     alphabet: Optional[str] = None, examples: int = 5) -> dict:
    """Per-timestep agreement, decoded exact match, the blank used and the first decoded pairs."""
    ref_ids, test_ids = sequence_ids(ref, class_axis), sequence_ids(test, class_axis)
    blank = infer_blank(ref_ids) if blank is None else blank
    decoded = [(ctc_greedy(a, blank), ctc_greedy(b, blank)) for a, b in zip(ref_ids, test_ids)]
    return {
        "timestep_agreement": float(np.mean(ref_ids == test_ids)),
        "sequence_match": float(np.mean([a == b for a, b in decoded])),
        "blank_index": blank,
        "examples": [{"reference": decode_text(a, blank, alphabet), "candidate": decode_text(b, blank, alphabet)}
                     for a, b in decoded[:examples]],
    }


def map_iou(ref: np.ndarray, test: np.ndarray, threshold: float) -> float:
    """IoU of (ref > threshold) and (test > threshold) over every sample; 1.0 when both are empty."""
    a, b = ref > threshold, test > threshold
    union = int(np.sum(a | b))
    return 1.0 if union == 0 else float(np.sum(a & b)) / union


def channel_groups(ref: np.ndarray, feature_axis: Optional[int], split: Optional[int],
                   kinds: tuple[str, str] | None = None) -> list[tuple[str, slice]]:
    """Named row groups along the feature axis: [rows 0-k, rows k-F] when split, else all rows;
    `kinds` names what the two groups hold, e.g. ("box coordinates", "class scores")."""
    if feature_axis is None or ref.ndim < 2:
        return [("all", slice(None))]
    size = ref.shape[feature_axis if feature_axis < 0 else feature_axis + 1]
    if not split or split >= size:
        return [(f"rows 0-{size - 1}", slice(None))]
    head, tail = (f" ({k})" for k in kinds) if kinds else ("", "")
    return [(f"rows 0-{split - 1}{head}", slice(0, split)), (f"rows {split}-{size - 1}{tail}", slice(split, size))]


def group_sqnr(ref: np.ndarray, test: np.ndarray, feature_axis: Optional[int],
               split: Optional[int], kinds: tuple[str, str] | None = None) -> list[dict]:
    """[{"group", "sqnr_db"}] per channel group (inf = identical)."""
    groups = []
    for name, rows in channel_groups(ref, feature_axis, split, kinds):
        if name == "all":
            a, b = ref, test
        else:
            axis = feature_axis if feature_axis < 0 else feature_axis + 1
            a, b = np.moveaxis(ref, axis, 0)[rows], np.moveaxis(test, axis, 0)[rows]
        groups.append({"group": name, "sqnr_db": metrics.sqnr_db(a, b)})
    return groups
