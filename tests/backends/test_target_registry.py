"""The Target contract: a target registered at run time is built, validated and reported by
compress without touching any other file, and the registry is the only place that branches on a
backend name (#12)."""

from __future__ import annotations

import json
import re

import onnx
import pytest

from edgekit import backends
from tests.conftest import DIGITS_DATA, ROOT
from tests.onnx.models import conv_bn_model

FAKE = '''
import shutil

from edgekit.backends.base import Built, BuildResult


class FakeTarget:
    """Copies the float ONNX graph as its only artifact (runs it with onnxruntime)."""

    name = "fake"
    formats = (".fakeonnx",)
    precisions = ("fp32",)
    needs = "onnx"
    upstream = None
    baseline = "fake"
    uses_device = False
    runs_on_host = True

    def build(self, source, recipe, calibration, ctx):
        ctx.on_step("building fake")
        path = ctx.stage / "model_fp32.fakeonnx"
        shutil.copyfile(source.onnx(ctx.workdir, ctx.on_step), path)
        return BuildResult([Built(path.name, self.name, "fp32", path, {"fake": True})], notes=["fake: built"])

    def runner(self, path, threads=None):
        from edgekit.runtime.onnx import OnnxRunner

        return OnnxRunner(path, threads)

    def inspect(self, path):
        return {}, {}, {}

    def embed_contract(self, path, contract):
        return None

    def selective(self, source, calibration, recipe, ctx, built=()):
        return None

    def finish(self, built, ctx):
        return []


TARGET = FakeTarget()
'''


@pytest.fixture
def fake_target(tmp_path, monkeypatch):
    (tmp_path / "fake_target_mod.py").write_text(FAKE)
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers inherit sys.path
    backends.register("fake", "fake_target_mod:TARGET")
    yield "fake"
    backends.unregister("fake")


def test_a_target_registered_at_run_time_is_built_validated_and_reported(fake_target, edgekit_cli, tmp_path):
    model = tmp_path / "conv_bn.onnx"
    onnx.save(conv_bn_model(opset=13, dynamic=True), str(model))
    out = tmp_path / "out"
    result = edgekit_cli("compress", model, "-t", "fake", "-c", DIGITS_DATA, "--color", "grayscale", "--layout", "nchw",
                         "--runs", "2", "--warmup", "1", "--quiet", "--allow-low-float-accuracy", "--out", out)
    assert result.code == 0, result.err
    report = json.loads((out / "report.json").read_text())
    (entry,) = report["artifacts"]
    assert entry["target"] == "fake" and entry["name"] == "model_fp32.fakeonnx" and entry["details"]["fake"] is True
    assert entry["accuracy"]["top1_agreement"] == 1.0  # validated against the float reference
    assert entry["latency"]["p50_ms"] > 0 and "fake: built" in report["notes"]
    assert (out / "model_fp32.fakeonnx").is_file() and "model_fp32.fakeonnx" in (out / "report.md").read_text()


def test_unknown_target_is_a_usage_error_naming_the_known_ones(edgekit_cli, tmp_path):
    result = edgekit_cli("compress", tmp_path / "m.onnx", "-t", "nope", "--out", tmp_path / "o")
    assert result.code == 2 and "tflite" in result.err and "onnx" in result.err


# Model formats (sources/, model/checks.py) and device-tool capabilities (bench/: which on-device
# tool runs which file format) are not backends; the recipe schema's description names defaults.
NOT_BACKEND_BRANCHES = ("edgekit/sources/", "edgekit/model/", "edgekit/bench/", "edgekit/devices/",
                        "edgekit/pipeline/cache.py")


def test_only_the_registry_and_the_backends_branch_on_a_backend_name():
    literal = re.compile(r"""["'](tflite|onnx|tensorrt)["']""")
    offenders = []
    for path in sorted((ROOT / "edgekit").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("edgekit/backends/") or rel.startswith(NOT_BACKEND_BRANCHES):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if literal.search(line):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert offenders == []


def test_build_order_puts_upstream_targets_first():
    assert backends.build_order(["tensorrt"]) == ["onnx", "tensorrt"]
    assert backends.build_order(["tensorrt", "onnx", "tflite"]) == ["onnx", "tensorrt", "tflite"]
    assert backends.resolve_targets([], "keras") == ["tflite"] and backends.resolve_targets([], "onnx") == ["onnx"]
