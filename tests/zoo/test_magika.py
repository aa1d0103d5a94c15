"""Google's magika (v3.3 model): a file-type classifier over raw bytes (int32 [1, 2048]: the first
and last 1024 bytes, whitespace-stripped, padded with 256), on real files of this Python install
(.py, .so, .png, .pdf, .ttf, .json, ...), labelled with the type their extension names.
Primary metric: accuracy on those labels, float vs INT8, from edgekit's own report."""

from __future__ import annotations

import json

import pytest

from tests.zoo import data
from tests.zoo import evaluate as ev

pytestmark = pytest.mark.zoo


def test_file_type_accuracy(zoo_files, edgekit_cli, tmp_path):
    labels = json.loads(zoo_files("magika_config").read_text())["target_labels_space"]
    files = data.write_file_features(tmp_path / "files", labels)
    report, _, _ = ev.compress(edgekit_cli, zoo_files("magika"), files, tmp_path / "out")
    accuracy = report["artifacts"][1]["accuracy"]
    print(f"zoo magika: {accuracy['samples']} held-out files, float accuracy {accuracy['reference_accuracy']:.3f}, "
          f"int8 {accuracy['accuracy']:.3f}, top-1 agreement {accuracy['top1_agreement']:.3f}")  # fmt: skip
    # measured: 52 held-out files, float 0.885, int8 0.885, top-1 agreement 0.942 (0.058 without the variance rule)
    assert accuracy["reference_accuracy"] >= 0.8
    assert accuracy["accuracy_drop_pts"] <= 5 and accuracy["top1_agreement"] >= 0.85
