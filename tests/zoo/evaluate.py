"""Run a compressed zoo model and its float original outside edgekit, on edgekit's held-out split.

- `compress(cli, model, data, out, *flags)`: the plain `edgekit compress MODEL --int8 -c DATA
  --out OUT` plus `flags`; asserts exit 0 and returns (report, fp32 artifact, int8 artifact).
- `held_out(out)`: the validation sample names edgekit wrote to split.json (never calibrated on).
- `session(path)`: a 1-thread CPU onnxruntime session; `image_input(path, mean, std)`: an NCHW
  float input the way the CLI's flags preprocess it.
- `ctc_decode(probs, characters)`: greedy CTC (PaddleOCR's: index 0 is blank, repeats merged).
- `yolo_boxes(output, threshold)` and `box_matches(reference, candidate)`: YOLOv8 detections
  ([4 + classes, anchors] head, class-wise NMS), and how many of the float model's a candidate covers.
- `detection_f1(float_model, int8_model, feeds, decode)`: (float detections, INT8 detections,
  matched, F1) summed over `feeds`; `decode(outputs)` gives one image's boxes.
- `picodet_head(outputs, height, width)`: PP-PicoDet's 8 heads (class scores, then box
  distributions, per stride 8/16/32/64) decoded into that same [4 + classes, anchors] form.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def compress(cli, model: Path, data: Path, out: Path, *flags, collapsed: str | None = None) -> tuple[dict, Path, Path]:
    """collapsed: the collapse guard must fire (exit 10, the report written) with this in its line."""
    result = cli("compress", model, "--int8", "-c", data, "--out", out, *flags)
    if collapsed is None:
        assert result.code == 0, result.err
    else:
        assert result.code == 10 and "collapse_guard" in result.err and collapsed in result.err, result.err
    report = json.loads((out / "report.json").read_text())
    fp32, int8 = (a for a in report["artifacts"] if a["precision"] in ("fp32", "int8"))
    return report, out / fp32["path"], out / int8["path"]


def held_out(out: Path) -> list[str]:
    names = json.loads((out / "split.json").read_text())["validation"]
    assert len(names) >= 10, names
    return names


def session(path: Path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def image_input(path: Path, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)) -> np.ndarray:
    from PIL import Image

    x = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0
    x = (x - np.float32(mean)) / np.float32(std)
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def ctc_decode(probs: np.ndarray, characters: list[str]) -> str:
    """probs [T, C] -> text; characters[0] is the blank."""
    best = probs.argmax(-1)
    keep = [i for t, i in enumerate(best) if i != 0 and (t == 0 or best[t - 1] != i)]
    return "".join(characters[i] for i in keep)


def yolo_boxes(output: np.ndarray, threshold: float = 0.25, iou: float = 0.45) -> list[tuple]:
    """output [4 + classes, anchors] (cx, cy, w, h, class scores) -> [(class, score, x0, y0, x1, y1)]."""
    scores = output[4:]
    classes, best = scores.argmax(0), scores.max(0)
    keep = np.flatnonzero(best > threshold)
    keep = keep[np.argsort(-best[keep])]
    cx, cy, w, h = output[:4, keep]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    chosen: list[tuple] = []
    for k, box in zip(keep, boxes):
        same = [c for c in chosen if c[0] == classes[k]]
        if all(_iou(box, np.array(c[2:])) < iou for c in same):
            chosen.append((int(classes[k]), float(best[k]), *map(float, box)))
    return chosen


def picodet_head(outputs: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Decode PaddleDetection's PicoDet post-processing (rapid_layout's PPPostProcess): per stride,
    anchor centres on the grid, and each side's distance = stride * E[softmax over reg_max + 1 bins]."""
    half = len(outputs) // 2
    parts = []
    for stride, scores, boxes in zip((8, 16, 32, 64), outputs[:half], outputs[half:]):
        rows, cols = np.meshgrid(np.arange(height // stride + (height % stride > 0)),
                                 np.arange(width // stride + (width % stride > 0)), indexing="ij")  # fmt: skip
        centre = (np.stack([cols.ravel(), rows.ravel()], 1) + 0.5) * stride
        bins = boxes[0].reshape(len(centre), 4, -1)
        weights = np.exp(bins - bins.max(-1, keepdims=True))
        distance = (weights / weights.sum(-1, keepdims=True) * np.arange(bins.shape[-1])).sum(-1) * stride
        x0y0, x1y1 = centre - distance[:, :2], centre + distance[:, 2:]
        parts.append(np.concatenate([(x0y0 + x1y1) / 2, x1y1 - x0y0, scores[0]], 1))
    return np.concatenate(parts).T


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    union = (a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter
    return float(inter / union) if union > 0 else 0.0


def box_matches(reference: list[tuple], candidate: list[tuple], iou: float = 0.5) -> int:
    """How many reference boxes a candidate box of the same class covers with IoU >= iou (greedy)."""
    free, matched = list(candidate), 0
    for ref in reference:
        hits = [c for c in free if c[0] == ref[0] and _iou(np.array(ref[2:]), np.array(c[2:])) >= iou]
        if hits:
            free.remove(hits[0])
            matched += 1
    return matched


def detection_f1(float_model, int8_model, feeds, decode) -> tuple[int, int, int, float]:
    found = kept = matched = 0
    for feed in feeds:
        reference, candidate = (decode(model.run(None, feed)) for model in (float_model, int8_model))
        found, kept = found + len(reference), kept + len(candidate)
        matched += box_matches(reference, candidate)
    return found, kept, matched, 2 * matched / max(1, found + kept)
