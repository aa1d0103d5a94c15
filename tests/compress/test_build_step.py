"""edgekit as a build step: cached rebuilds, deterministic parameters, isolation, interrupts, kills."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgekit.errors import ConversionError
from edgekit.fsutil import sha256_file
from tests.conftest import DIGITS_DATA


def _files(out: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(out.iterdir()) if p.is_file()}


def _copy_data(dest: Path, count: int = 120) -> Path:
    dest.mkdir()
    for path in sorted(DIGITS_DATA.glob("*.png"))[:count]:
        (dest / path.name).write_bytes(path.read_bytes())
    (dest / "labels.csv").write_text((DIGITS_DATA / "labels.csv").read_text())
    return dest


def test_unchanged_rebuild_is_a_cache_hit_and_touching_data_invalidates(digits_models, tmp_path, edgekit_cli,
                                                                          monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))
    data = _copy_data(tmp_path / "data")
    args = ["compress", digits_models[0], "--int8", "-c", data, "--color", "grayscale", "--runs", "3"]
    start = time.perf_counter()
    first = edgekit_cli(*args, "--out", tmp_path / "a")
    cold = time.perf_counter() - start
    assert first.code == 0, first.err
    start = time.perf_counter()
    second = edgekit_cli(*args, "--out", tmp_path / "b")
    elapsed = time.perf_counter() - start
    assert second.code == 0 and "from the cache" in second.out
    assert elapsed < cold / 3, (elapsed, cold)  # no conversion ran; the speed target is in scripts/bench/run.py
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    info = edgekit_cli("cache", "info", "--json")
    assert json.loads(info.out)["entries"] == 1
    victim = sorted(data.glob("*.png"))[0]
    victim.write_bytes(victim.read_bytes() + b"\0")  # same image, different bytes
    third = edgekit_cli(*args, "--out", tmp_path / "c")
    assert third.code == 0 and "from the cache" not in third.out
    assert json.loads(edgekit_cli("cache", "info", "--json").out)["entries"] == 2
    assert "removed 2 entries" in edgekit_cli("cache", "clear").out


def test_two_cold_runs_give_identical_quantization_and_keys(digits_models, tmp_path, edgekit_cli, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))
    from edgekit.runtime.tflite import load_interpreter

    data = _copy_data(tmp_path / "data", 60)
    params = []
    for name in ("x", "y"):
        result = edgekit_cli("compress", digits_models[0], "--int8", "-c", data, "--color", "grayscale",
                             "--runs", "2", "--no-cache", "--out", tmp_path / name, "--quiet")
        assert result.code == 0, result.err
        interpreter = load_interpreter(str(tmp_path / name / "model_int8.tflite"))
        params.append([(d["name"], d["quantization_parameters"]["scales"].tolist(),
                        d["quantization_parameters"]["zero_points"].tolist())
                       for d in interpreter.get_tensor_details()])
    assert params[0] == params[1]
    a, b = (json.loads((tmp_path / n / "report.json").read_text()) for n in ("x", "y"))
    assert [x["sha256"] for x in a["artifacts"]] == [x["sha256"] for x in b["artifacts"]]


def segfault(on_step):
    os.kill(os.getpid(), signal.SIGSEGV)


def test_native_crash_in_worker_is_a_one_line_error():
    from edgekit.pipeline.isolate import run_isolated

    with pytest.raises(ConversionError, match="crashed \\(SIGSEGV\\)"):
        run_isolated(segfault)


def _compress_argv(model: Path, out: Path, precision: str) -> list[str]:
    return [sys.executable, "-m", "edgekit", "compress", str(model), f"--{precision}", "--out", str(out),
            "--no-cache", "--runs", "2", "--quiet"]


def _state(out: Path, old: dict, new_names: set) -> str:
    files = _files(out)
    if files == old:
        return "old"
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {a["name"]: a["sha256"] for a in manifest["artifacts"]}
    assert set(listed) == new_names and all(files[n] == h for n, h in listed.items()), files
    return "new"


def _kill_at_random_points(tiny_keras, tmp_path, iterations, seed):
    out = tmp_path / "out"
    env = dict(os.environ, EDGEKIT_CACHE_DIR=str(tmp_path / "cache"))
    subprocess.run(_compress_argv(tiny_keras, out, "fp16"), check=True, env=env, timeout=300)
    old = _files(out)
    start = time.perf_counter()
    subprocess.run(_compress_argv(tiny_keras, tmp_path / "timing", "dynamic"), check=True, env=env, timeout=300)
    full = time.perf_counter() - start
    rng = random.Random(seed)
    seen = {"old": 0, "new": 0}
    for _ in range(iterations):
        proc = subprocess.Popen(_compress_argv(tiny_keras, out, "dynamic"), env=env)
        time.sleep(rng.uniform(0, full * 1.1))
        proc.kill()
        proc.wait(timeout=30)
        state = _state(out, old, {"model_fp32.tflite", "model_dynamic.tflite"})
        seen[state] += 1
        if state == "new":  # go back to a known old output for the next kill
            subprocess.run(_compress_argv(tiny_keras, out, "fp16"), check=True, env=env, timeout=300)
            old = _files(out)
    print(f"\nkill-at-random-points: {iterations} kills, {seen['old']} left the old output, "
          f"{seen['new']} the new one, never a mix")
    final = subprocess.run(_compress_argv(tiny_keras, out, "dynamic"), env=env, timeout=300)
    assert final.returncode == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".edgekit-")]


def test_sigkill_at_random_points_leaves_old_or_new_output(tiny_keras, tmp_path):
    _kill_at_random_points(tiny_keras, tmp_path, iterations=3, seed=1)  # 40 more under -m slow


@pytest.mark.slow
def test_sigkill_at_random_points_many(tiny_keras, tmp_path):
    _kill_at_random_points(tiny_keras, tmp_path, iterations=40, seed=2)


def _qdq_params(path: Path) -> list[bytes]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return sorted(numpy_helper.to_array(t).tobytes() + t.name.rsplit("_", 2)[-1].encode()
                  for t in model.graph.initializer if t.name.endswith(("_scale", "_zero_point")))


def _onnx_runs(sources, tmp_path, edgekit_cli) -> dict:
    runs = {}
    for source, name in sources:
        result = edgekit_cli("compress", source, "--int8", "-c", DIGITS_DATA, "--color", "grayscale", "-t", "onnx",
                             "--num-calibration", "60", "--runs", "2", "--no-cache", "--out", tmp_path / name,
                             "--quiet")
        assert result.code == 0, result.err
        runs[name] = {a["precision"]: a for a in json.loads((tmp_path / name / "report.json").read_text())["artifacts"]}
    return runs


def test_onnx_cold_runs_reproducible(digits_models, tmp_path, edgekit_cli):
    """ONNX in -> byte-identical ONNX out."""
    from edgekit.sources.tf2onnx_export import export_to_onnx

    model = tmp_path / "digits.onnx"
    export_to_onnx(digits_models[1], model)
    runs = _onnx_runs(((model, "onnx_a"), (model, "onnx_b")), tmp_path, edgekit_cli)
    assert runs["onnx_a"]["int8"]["sha256"] == runs["onnx_b"]["int8"]["sha256"]
    assert runs["onnx_a"]["fp32"]["sha256"] == runs["onnx_b"]["fp32"]["sha256"]


@pytest.mark.slow  # two more TF -> ONNX compresses (~18 s loaded)
def test_tf_to_onnx_cold_runs_same_quantization(digits_models, tmp_path, edgekit_cli):
    """TensorFlow in -> tf2onnx names some folded constants with run-dependent counters, so bytes
    differ; the quantization parameters are identical."""
    _onnx_runs(((digits_models[1], "tf_a"), (digits_models[1], "tf_b")), tmp_path, edgekit_cli)
    assert _qdq_params(tmp_path / "tf_a" / "model_int8.onnx") == _qdq_params(tmp_path / "tf_b" / "model_int8.onnx")
