"""Detector heads: decode rows of box coordinates + class scores, NMS, and match float vs candidate.

One head tensor per sample holds, along its feature axis, `box_rows` coordinate rows (cx, cy, w, h
by default, or x1, y1, x2, y2) and then one row per class (YOLO-style, either layout). A
detection is an anchor whose best class score exceeds `score_threshold`, kept by per-class
NMS at `nms_iou`. The candidate's detections are matched to the float model's (same class,
IoU >= 0.5, greedy by score): precision, recall and F1 against float.
"""

from __future__ import annotations

import numpy as np

MATCH_IOU = 0.5


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)  # noqa: E731
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def decode(head: np.ndarray, feature_axis: int, box_rows: int, *, box_format: str = "cxcywh",
           score_threshold: float = 0.25, nms_iou: float = 0.45) -> np.ndarray:
    """Detections of one sample's head as rows [x1, y1, x2, y2, score, class], best first."""
    rows = np.moveaxis(np.asarray(head, dtype=np.float64), feature_axis, 0)
    rows = rows.reshape(rows.shape[0], -1).T  # [anchors, features]
    coords, scores = rows[:, :4], rows[:, box_rows:]
    if scores.shape[1] == 0:
        return np.zeros((0, 6))
    cls, best = scores.argmax(axis=1), scores.max(axis=1)
    keep = best > score_threshold
    coords, cls, best = coords[keep], cls[keep], best[keep]
    if box_format == "cxcywh":
        half = coords[:, 2:4] / 2
        coords = np.concatenate([coords[:, :2] - half, coords[:, :2] + half], axis=1)
    chosen = []
    for c in np.unique(cls):
        idx = np.flatnonzero(cls == c)
        idx = idx[np.argsort(-best[idx], kind="stable")]
        while idx.size:
            chosen.append(idx[0])
            idx = idx[1:][_iou(coords[idx[0]], coords[idx[1:]]) <= nms_iou]
    chosen = sorted(chosen, key=lambda i: -best[i])
    return np.column_stack([coords[chosen], best[chosen], cls[chosen]]) if chosen else np.zeros((0, 6))


def matches(reference: np.ndarray, candidate: np.ndarray) -> int:
    """How many candidate detections match a float detection (same class, IoU >= 0.5), greedily."""
    used = np.zeros(len(reference), dtype=bool)
    hits = 0
    for det in candidate:
        same = np.flatnonzero((reference[:, 5] == det[5]) & ~used) if len(reference) else np.array([], int)
        if not same.size:
            continue
        ious = _iou(det[:4], reference[same, :4])
        if ious.max() >= MATCH_IOU:
            used[same[ious.argmax()]] = True
            hits += 1
    return hits


def box_metrics(ref: np.ndarray, test: np.ndarray, feature_axis: int, box_rows: int, **decode_opts) -> dict:
    """Precision/recall/F1 of the candidate's detections vs float over all samples, with counts
    and the first sample's detections (for the report's picture)."""
    ref_dets = [decode(r, feature_axis, box_rows, **decode_opts) for r in ref]
    test_dets = [decode(t, feature_axis, box_rows, **decode_opts) for t in test]
    hits = sum(matches(a, b) for a, b in zip(ref_dets, test_dets))
    n_ref, n_test = sum(len(d) for d in ref_dets), sum(len(d) for d in test_dets)
    precision = 1.0 if n_test == 0 else hits / n_test
    recall = 1.0 if n_ref == 0 else hits / n_ref
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "reference_detections": n_ref,
            "candidate_detections": n_test, "matched": hits,
            "first_sample": {"reference": ref_dets[0][:50].round(3).tolist(),
                             "candidate": test_dets[0][:50].round(3).tolist()}}
