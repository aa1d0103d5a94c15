"""torchvision's MobileNetV3-Small (HardSwish, SE blocks) as an entry point: exports, fuses and
quantizes with nothing model-specific beyond --input-shape; the fusion report lists its BN folds."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torchvision", reason="PyTorch models need edgekit[torch] (scripts/setup.sh installs it)")

MODULE = '''
import torch, torchvision

def build():
    torch.manual_seed(0)
    return torchvision.models.mobilenet_v3_small(weights=None)
'''


@pytest.mark.slow
def test_mobilenet_v3_small_entry_point(tmp_path, edgekit_cli, monkeypatch):
    (tmp_path / "mnv3.py").write_text(MODULE)
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    np.save(data / "images.npy", rng.random((24, 1, 3, 96, 96), dtype=np.float32))
    monkeypatch.chdir(tmp_path)
    result = edgekit_cli("compress", "mnv3:build", "--trust-model", "--input-shape", "x:1x3x96x96",
                         "--int8", "-c", data, "--out", tmp_path / "build", "--runs", "2", "--json",
                         "--no-collapse-guard")  # untrained weights: near-uniform scores, no headline to guard
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["model"]["export"]["max_relative_error"] < 1e-4
    fusion = report["fusion"]["onnx"]
    folds = [g for g in fusion["groups"] if g["pass"] == "fold_batchnorm"]
    assert len(folds) == fusion["source_op_counts"]["BatchNormalization"] == 34
    assert "BatchNormalization" not in fusion["target_op_counts"]
    assert fusion["target_op_counts"]["HardSwish"] > 0 and fusion["target_op_counts"]["HardSigmoid"] > 0
    int8 = next(a for a in report["artifacts"] if a["precision"] == "int8")
    assert int8["op_counts"].get("QuantizeLinear", 0) > 0
    assert int8["compression"]["mac_share"]["int8"] > 0.9
