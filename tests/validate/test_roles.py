"""Output roles, the primary output and the per-role metrics, on numpy outputs of known shape."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.recipe.schema import OutputSpec
from edgekit.validate.evaluate import compare
from edgekit.validate.roles import is_state, resolve_roles

RNG = np.random.default_rng(0)


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def yolo_head(boxes_first=True, anchors=60, classes=3):
    """[1, 4 + classes, anchors]: pixel boxes (0..320) then sigmoid class scores."""
    coords = RNG.uniform(10, 320, (1, 4, anchors))
    scores = 1 / (1 + np.exp(-RNG.normal(-0.8, 0.8, (1, classes, anchors))))
    return np.concatenate([coords, scores], axis=1).astype(np.float32)


def test_regression_head_first_by_name_is_not_the_headline():
    reference = [{"a_bbox": RNG.normal(0, 50, (1, 4)), "probs": softmax(RNG.normal(0, 3, (1, 10)))}
                 for _ in range(20)]
    roles = resolve_roles(reference)
    assert roles.primary == "probs"
    assert roles["a_bbox"].role == "regression" and roles["probs"].role == "scores"
    candidate = [{"a_bbox": r["a_bbox"] * 1.5, "probs": r["probs"]} for r in reference]
    acc = compare(reference, candidate, [int(r["probs"].argmax()) for r in reference], roles)
    assert acc.primary_output == "probs" and acc.top1_agreement == 1.0 and acc.accuracy == 1.0
    assert acc.outputs["a_bbox"].top1_agreement is None  # no "top-1 over 4 coordinates"
    declared = resolve_roles(reference, declared={"a_bbox": OutputSpec(primary=True)})
    assert declared.primary == "a_bbox"


def test_state_outputs_pair_with_inputs_and_never_lead():
    inputs = {"input": (1, 512), "state": (2, 1, 128), "h0": (1, 64), "c0": (1, 64)}
    assert is_state("stateN", (2, 1, 128), inputs)
    assert is_state("hn", (1, 64), inputs) and is_state("cn", (1, 64), inputs)
    assert not is_state("output", (1, 64), inputs)
    reference = [{"output": RNG.uniform(0, 1, (1, 1)), "stateN": RNG.normal(0, 1, (2, 1, 128)),
                  "cn": RNG.normal(0, 1, (1, 64))} for _ in range(10)]
    roles = resolve_roles(reference, inputs)
    assert roles.primary == "output"
    assert roles["stateN"].role == roles["cn"].role == "state"
    candidate = [{**r, "cn": r["cn"] * 0} for r in reference]
    acc = compare(reference, candidate, [None] * 10, roles)
    assert acc.sqnr_db is None and acc.top1_agreement == 1.0  # the state's error is reported, not the headline
    assert acc.outputs["cn"].sqnr_db == 0.0


def test_channels_first_detector_head_splits_box_and_class_rows():
    reference = [{"det": yolo_head()} for _ in range(6)]
    role = resolve_roles(reference)["det"]
    assert (role.role, role.feature_axis, role.box_rows) == ("boxes", -2, 4)
    step = 330 / 255  # one uint8 scale for pixels and probabilities: every score becomes 0 or 1.29
    collapsed = [{"det": np.round(r["det"] / step) * step} for r in reference]
    acc = compare(reference, collapsed, [None] * 6)
    out = acc.outputs["det"]
    assert [g["group"] for g in out.groups] == ["rows 0-3 (box coordinates)", "rows 4-6 (class scores)"]
    assert out.worst_group == "rows 4-6 (class scores)" and out.worst_group_sqnr_db < 3
    assert out.groups[0]["sqnr_db"] > 30 and acc.sqnr_db > 20  # the total hides the damage
    assert acc.box_f1 < 0.5 and out.boxes["reference_detections"] > 0
    same = compare(reference, reference, [None] * 6)
    assert same.box_f1 == 1.0


def test_channels_last_scores_and_class_axis_detected():
    probs = [{"scores": softmax(RNG.normal(0, 2, (1, 6, 30)), axis=1)} for _ in range(5)]  # [1, C, anchors]
    role = resolve_roles(probs)["scores"]
    assert role.role == "sequence" and role.class_axis == -2


def test_sequence_decode_exact_match_and_blank():
    logits = RNG.normal(0, 1, (8, 1, 20, 5))
    logits[..., 4] += 2.5  # blank = 4 dominates, as in CTC outputs
    reference = [{"ctc": softmax(x)} for x in logits]
    candidate = [{"ctc": r["ctc"].copy()} for r in reference]
    candidate[0]["ctc"][0, 3] = [0, 0, 0, 1.0, 0]  # one timestep changed in one sample
    acc = compare(reference, candidate, [None] * 8)
    out = acc.outputs["ctc"]
    assert out.role == "sequence" and out.blank_index == 4
    assert acc.top1_agreement == pytest.approx(1 - 1 / 160)
    changed = reference[0]["ctc"][0].argmax(-1)[3] != 3
    assert acc.sequence_match == pytest.approx(1 - changed / 8)
    assert len(out.examples) == 5 and out.examples[1]["reference"] == out.examples[1]["candidate"]


def test_map_iou_and_declared_role():
    reference = [{"mask": RNG.uniform(0, 1, (1, 8, 8, 1))} for _ in range(4)]
    assert resolve_roles(reference)["mask"].role == "map"
    shifted = [{"mask": np.clip(r["mask"] + 0.2, 0, 1)} for r in reference]
    acc = compare(reference, shifted, [None] * 4)
    assert 0.5 < acc.map_iou < 1.0
    roles = resolve_roles(reference, declared={"mask": OutputSpec(role="regression")})
    assert roles["mask"].role == "regression" and not roles["mask"].inferred


def test_unknown_declared_output_is_a_recipe_error():
    from edgekit.errors import RecipeError

    with pytest.raises(RecipeError, match="nope"):
        resolve_roles([{"a": np.zeros((1, 3))}], declared={"nope": OutputSpec(primary=True)})


def test_unbounded_rank3_is_a_sequence_only_with_evidence():
    hidden = [{"last_hidden": RNG.normal(0, 1, (1, 20, 64))} for _ in range(6)]
    assert resolve_roles(hidden)["last_hidden"].role == "regression"  # argmax over features means nothing
    logits = RNG.normal(0, 1, (6, 1, 20, 12))
    logits[..., 0] += 2.0  # a CTC blank (index 0, PaddleOCR's convention) wins most timesteps
    roles = resolve_roles([{"out": x} for x in logits])
    assert roles["out"].role == "sequence" and roles["out"].class_axis == -1
    acc = compare([{"out": x} for x in logits], [{"out": x} for x in logits], [None] * 6, roles)
    assert acc.outputs["out"].blank_index == 0 and acc.sequence_match == 1.0


def test_decoded_text_with_an_alphabet_either_blank_convention():
    from edgekit.validate.task_metrics import ctc_greedy, decode_text

    ids = np.array([3, 3, 0, 3, 1, 1, 0, 2])
    assert ctc_greedy(ids, blank=0) == (3, 3, 1, 2)
    assert decode_text((3, 3, 1, 2), blank=0, alphabet="abc") == "ccab"  # PaddleOCR: blank first
    assert decode_text((2, 2, 0, 1), blank=3, alphabet="abc") == "ccab"  # Keras: blank last
    assert decode_text((1, 2), blank=0, alphabet=None) == "1 2"


def test_declared_decode_settings_reach_the_box_metrics():
    from edgekit.validate.boxes import decode

    head = np.array([[[10, 10, 50, 50, 0.9, 0.1], [12, 12, 52, 52, 0.8, 0.1], [60, 60, 90, 90, 0.3, 0.35]]],
                    dtype=np.float32)  # [1, anchors, x1 y1 x2 y2 + 2 classes]: channels last
    dets = decode(head[0], -1, 4, box_format="xyxy", score_threshold=0.25, nms_iou=0.45)
    assert dets[:, 5].tolist() == [0, 1] and dets[0, :4].tolist() == [10, 10, 50, 50]  # the overlap suppressed
    assert len(decode(head[0], -1, 4, box_format="xyxy", score_threshold=0.5)) == 1
    reference = [{"det": np.concatenate([head, head], axis=1)} for _ in range(3)]  # duplicates: one NMS keeps
    spec = OutputSpec(role="boxes", box_rows=4, box_format="xyxy", score_threshold=0.5, class_axis=-1)
    roles = resolve_roles(reference, declared={"det": spec})
    assert (roles["det"].feature_axis, roles["det"].score_threshold, roles["det"].box_format) == (-1, 0.5, "xyxy")
    acc = compare(reference, reference, [None] * 3, roles)
    assert acc.box_f1 == 1.0 and acc.outputs["det"].boxes["reference_detections"] == 3


def test_a_detectors_per_anchor_logits_are_not_a_sequence():
    # PP-PicoDet's box-distribution head [1, 7600, 32]: one bin wins most anchors, like a CTC blank
    anchors = RNG.normal(0, 1, (2, 1, 7600, 32))
    anchors[..., 7] += 2.0
    assert resolve_roles([{"transpose_1.tmp_0": x} for x in anchors])["transpose_1.tmp_0"].role == "regression"


def _split_rows_by_definition(x, axis):
    """split_rows as its docstring states it, row by row (quadratic: small inputs only)."""
    rows = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    if rows.shape[0] < 3 or rows.shape[1] < 2:
        return None
    span = np.abs(rows).max(axis=1)
    for k in range(1, rows.shape[0] - 1):
        tail = rows[k:]
        if tail.min() >= -1e-3 and tail.max() <= 1 + 1e-3 and span[:k].min() >= 10 * max(span[k:].max(), 1e-6):
            return k
    return None


def test_split_rows_matches_its_definition_and_takes_one_pass_on_a_wide_vocabulary():
    from edgekit.validate.roles import split_rows

    cases = [yolo_head(anchors=a, classes=c) for a in (2, 7, 60) for c in (1, 3, 9)]
    cases += [RNG.uniform(0, 1, (2, 12, 5)), RNG.normal(0, 1, (2, 12, 5)), np.zeros((1, 6, 4)),
              np.concatenate([RNG.uniform(5, 9, (1, 3, 4)), RNG.uniform(-0.2, 0.5, (1, 3, 4))], axis=1)]
    for x in cases:
        for axis in (1, 2):
            assert split_rows(x, axis) == _split_rows_by_definition(x, axis)
    # a CTC recognizer's [64, 40, 6625] probabilities: the row-by-row scan took ~10 s per call here
    wide = softmax(RNG.normal(0, 3, (64, 40, 6625)).astype(np.float32))
    assert split_rows(wide, 2) is None
