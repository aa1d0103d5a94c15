"""PaddleOCR's three pretrained models as the rapidocr-onnxruntime wheel ships them, on text rendered
here: the MobileNetV3 text-direction classifier (an image classifier), the PP-OCRv4 DBNet text
detector (a probability map) and the PP-OCRv4 SVTR recognizer (a CTC sequence model; its character
list is in the model's metadata). Each is compressed with the plain command plus its preprocessing,
and its primary metric is measured on edgekit's held-out split against the float model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.zoo import data
from tests.zoo import evaluate as ev

pytestmark = pytest.mark.zoo
from scripts.models import text_lines
UNIT = ("--layout", "nchw", "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5")  # PaddleOCR's (x - 0.5) / 0.5
IMAGENET = ("--layout", "nchw", "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225")


def test_text_direction_classifier_accuracy(paddle_models, edgekit_cli, tmp_path):
    lines = text_lines.write_text_lines(tmp_path / "lines", 300)
    report, _, _ = ev.compress(edgekit_cli, paddle_models / text_lines.CLASSIFIER, lines, tmp_path / "out", *UNIT)
    accuracy = report["artifacts"][1]["accuracy"]
    print(f"zoo cls: float accuracy {accuracy['reference_accuracy']:.3f}, int8 {accuracy['accuracy']:.3f}")
    # measured: float 0.939, int8 0.924 (66 held-out lines)
    assert accuracy["reference_accuracy"] >= 0.9
    assert accuracy["accuracy"] >= 0.88 and accuracy["accuracy_drop_pts"] <= 5


def test_text_detector_mask_iou(paddle_models, edgekit_cli, tmp_path):
    pages = text_lines.write_text_pages(tmp_path / "pages", 80)
    out = tmp_path / "out"
    _, fp32, int8 = ev.compress(edgekit_cli, paddle_models / text_lines.DETECTOR, pages, out, *IMAGENET)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    float_model, int8_model = ev.session(fp32), ev.session(int8)
    inter = union = 0
    for name in ev.held_out(out):
        x = {"x": ev.image_input(pages / name, mean, std)}
        text_float, text_int8 = (s.run(None, x)[0] > 0.3 for s in (float_model, int8_model))  # DBNet's threshold
        assert text_float.mean() > 0.02  # the float model does find the text
        inter, union = inter + (text_float & text_int8).sum(), union + (text_float | text_int8).sum()
    print(f"zoo det: text-mask IoU int8 vs float {inter / union:.3f}")
    assert inter / union >= 0.85  # measured: 0.897


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def test_text_recognizer_character_accuracy(paddle_models, edgekit_cli, tmp_path):
    lines = data.write_word_lines(tmp_path / "lines", 200)
    truth = json.loads((lines / "texts.json").read_text())
    out = tmp_path / "out"
    # The plain INT8 build decodes about half the lines differently from float (exact id-sequence
    # match with float 0.40 at first, 0.50 now: the collapse guard's floor, where it no longer fires),
    # so the guard is off here: this test measures the characters (the guard has its own tests).
    _, fp32, int8 = ev.compress(edgekit_cli, paddle_models / "ch_PP-OCRv4_rec_infer.onnx", lines, out, *UNIT,
                                "--no-collapse-guard")
    float_model, int8_model = ev.session(fp32), ev.session(int8)
    characters = ["blank", *float_model.get_modelmeta().custom_metadata_map["character"].splitlines(), " "]
    names = ev.held_out(out)
    errors, exact = np.zeros(2), np.zeros(2)
    for name in names:
        x = {"x": ev.image_input(lines / name, (0.5,) * 3, (0.5,) * 3)}
        for k, model in enumerate((float_model, int8_model)):
            text = ev.ctc_decode(model.run(None, x)[0][0], characters).strip()
            errors[k] += _edit_distance(text, truth[name])
            exact[k] += text == truth[name]
    chars = sum(len(truth[n]) for n in names)
    (float_acc, int8_acc), (float_exact, int8_exact) = 1 - errors / chars, exact / len(names)
    print(f"zoo rec: character accuracy float {float_acc:.3f}, int8 {int8_acc:.3f}; "
          f"exact lines float {float_exact:.3f}, int8 {int8_exact:.3f}")  # fmt: skip
    # measured: character accuracy float 0.960, int8 0.933; exact lines float 0.857, int8 0.643 (27 of 42;
    # 0.667 in an earlier run, 0.786 before that): on 42 lines one line is 2.4 points, so the exact-line floor
    # (plain INT8, no search: the ladder's test holds the real budget) leaves two lines of room
    assert float_acc >= 0.93 and float_exact >= 0.75
    assert int8_acc >= 0.92 and int8_exact >= 0.6


def test_text_direction_classifier_precision_ladder(paddle_models, edgekit_cli, tmp_path):
    """--min-agreement 0.99: the ONNX precision ladder (issue #13) meets it on held-out lines."""
    lines = text_lines.write_text_lines(tmp_path / "lines", 600)
    out = tmp_path / "out"
    report, _, _ = ev.compress(edgekit_cli, paddle_models / text_lines.CLASSIFIER, lines, out, *UNIT,
                               "--target", "onnx", "--min-agreement", "0.99")
    int8 = report["artifacts"][1]
    fallback = int8["details"]["fallback"]
    ladder = fallback["ladder"]
    print(f"zoo cls ladder: agreement plain {fallback['steps'][0]['accuracy']['top1_agreement']}, final "
          f"{int8['accuracy']['top1_agreement']}; MAC share {ladder['mac_share']}; p50 {ladder['latency_p50_ms']}; "
          f"{len(fallback['steps'])} builds; unseen {fallback['final_confirmation']}")
    assert fallback["met"] and int8["accuracy"]["top1_agreement"] >= 0.99
    assert fallback["final_confirmation"]["met"] and fallback["final_confirmation"]["samples"] >= 50
    # measured with regrouped channel-group weights (2026-12-04): plain 0.968, ladder 1.0 (unseen 1.0 on 62) with
    # 96.0% W8A8 (4.0% W8A16), 14 builds. Before: plain 0.96, ladder 1.0 with 91.8% W8A8 (8.2% W8A16), 14 builds, ranked by log-probability
    # noise (by output SQNR: 0.992 with 95.0% of conv/matmul MACs W8A8 (4.9% W16A16), 22 builds), over
    # GPTQ-rounded weights (int8.weight_rounding auto; with the descent's units and weights ranked apart:
    # 99.2% W8A8 in 13); with round-to-nearest 1.0 with 82.5% W8A8 in 15
    assert ladder["mac_share"].get("W8A8", 0) >= 0.70


def _ladder(cli, model, data, out, *flags) -> tuple:
    """compress --target onnx with a ladder budget: (exit code, stderr, the INT8 artifact's
    report entry, its details.fallback)."""
    result = cli("compress", model, "--int8", "-c", data, "--out", out, "--target", "onnx", *flags)
    assert result.code in (0, 10), result.err
    report = json.loads((out / "report.json").read_text())
    int8 = next(a for a in report["artifacts"] if a["precision"] == "int8")
    return result.code, result.err, int8, int8["details"]["fallback"]


def test_text_recognizer_precision_ladder(paddle_models, edgekit_cli, tmp_path):
    """--min-sequence-match 0.97 --min-agreement 0.99 (decoded id sequences and per-timestep
    argmax vs float) on 1000 rendered lines, 60% held out: the search decides on 250 and its choice
    is confirmed on 250 it never saw (with 62 a side, one line was 1.6 points and met points were
    refuted one after another). Over GPTQ-rounded INT8 weights the all-int16 point meets both, and
    the descent sends the tensors whose INT8 activations and weights together cost least per MAC
    back to W8A8, the big 1x1 convs through channel groups with activation and weight scales of
    their own. The issue's >= 50% of MACs in W8A8 is met, close to the budget: near it, sequence
    match moves by float near-tie lines (12% of the lines have a timestep whose top two classes are
    < 0.05 apart in log-probability)."""
    lines = data.write_word_lines(tmp_path / "lines", 1000)
    recipe = tmp_path / "recipe.yaml"  # 60% held out, capped at 500 (max_validation_samples): 250 a side
    # the search takes about 20 min here: an hour keeps a slower machine from stopping it mid-descent
    recipe.write_text("calibration:\n  validation_fraction: 0.6\nfallback:\n  time_budget_s: 3600\n")
    code, err, int8, fallback = _ladder(edgekit_cli, paddle_models / "ch_PP-OCRv4_rec_infer.onnx", lines,
                                        tmp_path / "out", *UNIT, "--min-sequence-match", "0.97",
                                        "--min-agreement", "0.99", "--recipe", recipe)
    plain, best = fallback["steps"][0]["accuracy"], int8["accuracy"]
    print(f"zoo rec ladder: sequence match plain {plain['sequence_match']}, best {best['sequence_match']}; "
          f"per-timestep plain {plain['top1_agreement']}, best {best['top1_agreement']}; "
          f"MAC share {fallback['ladder']['mac_share']}; {len(fallback['steps'])} builds; {fallback['stopped']}; "
          f"unseen {fallback['final_confirmation']}; {fallback['confirmation']}")
    assert [s["phase"] for s in fallback["steps"][:3]] == ["baseline", "bias correction", "all int16"]
    assert code == 0 and fallback["met"], err
    unseen = fallback["final_confirmation"]  # the choice, on held-out lines the search never saw
    assert unseen["met"] and unseen["samples"] >= 60 and unseen["accuracy"]["sequence_match"] >= 0.97, unseen
    assert best["sequence_match"] >= 0.97 and best["top1_agreement"] >= 0.99, (plain, best)
    assert fallback["ladder"]["mac_share"].get("W8A8", 0) >= 0.5
    # measured (2026-12-04, 250 searched + 250 unseen): sequence match plain INT8 0.368, all int16 0.988
    # (42.1 dB); the descent's 4th grid point met (0.972), prune kept it; final 0.972 searched, 0.976
    # unseen (32.0 dB), per-timestep 0.997: 69.5% of MACs W8A8, 30.4% W16A16; 25 builds, 21 min; host
    # p50 55.1 ms (FP32 20.8: int16 QDQ runs emulated on onnxruntime's CPU provider, flagged).
    # Over all 600 lines of an earlier render, points at 55-71% W8A8 decode 0.973-0.987 like float: the
    # true rate sits 0-2 points over the budget, which is why fewer lines a side (62: 0.6% W8A8, 165:
    # 39.7%) ended lower, and why a machine whose float near ties fall otherwise may land lower too.


def test_text_detector_precision_ladder(paddle_models, edgekit_cli, tmp_path):
    """--min-map-iou 0.95 (DBNet's threshold 0.3, declared in the recipe) --min-sqnr 25 on the
    probability map: met. The all-int16 point now raises weights too (W16A16, 43 dB: the INT8
    weights were most of the loss, which int16 activations never touched), and the descent sends
    the least sensitive units and conv weights per MAC back to INT8."""
    pages = text_lines.write_text_pages(tmp_path / "pages", 200)  # 40 held out: 20 search, 20 confirm
    recipe = tmp_path / "det.yaml"
    recipe.write_text("outputs:\n  sigmoid_0.tmp_0: {role: map, map_threshold: 0.3}\n")
    code, err, int8, fallback = _ladder(edgekit_cli, paddle_models / text_lines.DETECTOR, pages, tmp_path / "out",
                                        *IMAGENET, "--recipe", recipe, "--min-map-iou", "0.95", "--min-sqnr", "25")
    plain, best = fallback["steps"][0]["accuracy"], int8["accuracy"]
    print(f"zoo det ladder: map IoU plain {plain['map_iou']}, best {best['map_iou']}; SQNR plain {plain['sqnr_db']}, "
          f"best {best['sqnr_db']}; MAC share {fallback['ladder']['mac_share']}; {len(fallback['steps'])} builds, "
          f"{fallback['steps'][-1]['elapsed_s']} s; unseen {fallback['final_confirmation']}")
    assert code == 0 and fallback["met"], err
    assert fallback["final_confirmation"]["met"] and fallback["final_confirmation"]["samples"] >= 20
    assert best["map_iou"] >= 0.95 and best["sqnr_db"] >= 25, (plain, best)
    corrected = fallback["steps"][1]  # the INT8 weights' own mean shift: never a wreck (was 0.3 dB)
    assert corrected["phase"] == "bias correction" and corrected["accuracy"]["sqnr_db"] >= plain["sqnr_db"] - 1, corrected
    # measured with regrouped channel-group weights (2026-12-04): map IoU 0.991, 25.6 dB (25.1 dB unseen), 89.5% W8A8,
    # 23 builds. Before: (200 pages, the choice confirmed on 22 unseen): map IoU plain 0.901, ladder 0.991; SQNR plain 10.4 dB,
    # ladder 25.7 dB (25.5 dB on the unseen pages) with 85.0% of conv/matmul MACs W8A8 (15.0% W16A16),
    # 24 builds, 87 s. Before confirmation (80 pages, 16 held out): map IoU plain 0.902, ladder 0.991;
    # SQNR plain 10.5 dB, ladder 25.4 dB with 87.4% of
    # conv/matmul MACs W8A8 (5.4% W8A16, 7.2% W16A16), 23 builds, 66 s, over GPTQ-rounded weights (units
    # and weights ranked apart: 25.6 dB, 86.3% W8A8, 15 builds; round-to-nearest: 25.9 dB, 82.7% W8A8)
    assert fallback["ladder"]["mac_share"].get("W8A8", 0) >= 0.5
