"""The layer contracts of setup.cfg (import-linter): they hold on the tree, and a planted
back-edge breaks them (so CI, which runs lint-imports first, fails on one)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--config", str(root / "setup.cfg"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(ROOT / "edgekit", root / "edgekit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.cfg", root / "setup.cfg")
    return root


def test_the_tree_keeps_every_layer_contract():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-2000:]


def test_a_planted_back_edge_breaks_the_layers(tmp_path):
    root = _copy(tmp_path)
    metrics = root / "edgekit" / "validate" / "metrics.py"
    metrics.write_text(metrics.read_text() + "\n\ndef _planted():\n    from edgekit.pipeline import compress  # noqa\n")
    result = _lint(root)
    assert result.returncode != 0 and "edgekit.validate.metrics -> edgekit.pipeline.compress" in result.stdout


def test_one_backend_importing_another_breaks_their_independence(tmp_path):
    root = _copy(tmp_path)
    target = root / "edgekit" / "backends" / "tflite" / "target.py"
    target.write_text(target.read_text() + "\n\ndef _planted():\n    from edgekit.backends.onnx import quantize  # noqa\n")
    result = _lint(root)
    assert result.returncode != 0 and "backends are independent" in result.stdout
