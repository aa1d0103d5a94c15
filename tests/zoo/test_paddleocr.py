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
    # The plain INT8 build decodes most lines differently from float (exact id-sequence match with
    # float 0.40, measured): the default collapse guard says so with exit 10, after the report.
    _, fp32, int8 = ev.compress(edgekit_cli, paddle_models / "ch_PP-OCRv4_rec_infer.onnx", lines, out, *UNIT,
                                collapsed="sequence match")
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
    # measured: character accuracy float 0.960, int8 0.947; exact lines float 0.857, int8 0.786
    assert float_acc >= 0.93 and float_exact >= 0.75
    assert int8_acc >= 0.92 and int8_exact >= 0.65
