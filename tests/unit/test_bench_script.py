"""scripts/bench/run.py: its pure helpers, process-tree measurement and table (no benchmark is run)."""

from __future__ import annotations

import math
import re
import sys

import numpy as np
import pytest

from scripts.bench import data as bench_data
from scripts.bench import inference, measure
from scripts.bench import table as bench_table


def test_stage_times_split_the_wall_time_by_progress_step():
    lines = [(0.5, "edgekit: INFO: checking the build cache"), (1.0, "some tensorflow chatter"),
             (2.0, "edgekit: INFO: loading model"), (4.0, "edgekit: INFO: validating calibration data"),
             (5.0, "edgekit: WARNING: only 64 calibration samples"),
             (6.0, "edgekit: INFO: running the float reference"),
             (7.0, "edgekit: INFO: building tflite fp32"), (9.0, "edgekit: INFO: building tflite int8"),
             (15.0, "edgekit: INFO: validating model_fp32.tflite"), (16.0, "edgekit: INFO: something unknown"),
             (16.5, "edgekit: INFO: validating model_int8.tflite"), (17.5, "edgekit: INFO: writing report")]
    times = measure.stage_times(lines, wall_s=18.0)
    assert times == {"start": 0.5, "cache": 1.5, "load": 2.0, "data": 2.0, "reference": 1.0, "convert": 8.0,
                     "validate": 2.5, "report": 0.5}
    assert math.isclose(sum(times.values()), 18.0)


def test_interleaved_latency_runs_every_model_in_every_round():
    calls = {"a": 0, "b": 0}

    def make(name):
        def call():
            calls[name] += 1
        return call

    result = inference.interleaved_latency({"a": make("a"), "b": make("b")}, rounds=3, runs=4, warmup=2)
    assert calls == {"a": 2 + 3 * 4, "b": 2 + 3 * 4}
    assert set(result) == {"a", "b"}
    assert len(result["a"]["rounds_ms"]) == 3 and result["a"]["runs"] == 4
    assert min(result["a"]["rounds_ms"]) <= result["a"]["median_ms"] <= max(result["a"]["rounds_ms"])


def test_paired_ratio_divides_within_each_round():
    latency = {"int8": {"rounds_ms": [5.0, 10.0, 6.0]}, "fp32": {"rounds_ms": [10.0, 20.0, 10.0]}}
    assert bench_table.paired_ratio(latency, "int8", "fp32") == 0.5  # ratios 0.5, 0.5, 0.6


def test_agreement_and_sqnr():
    ref = [np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])]
    assert inference.agreement(ref, ref) == {"top1_agreement": 1.0, "sqnr_db": None, "samples": 2,
                                         "reference_distinct_top1": 2}
    noisy = [np.array([[1.0, 0.1]]), np.array([[0.1, 1.0]])]  # signal 2, noise 0.02 -> 20 dB
    assert inference.agreement(ref, noisy)["sqnr_db"] == pytest.approx(20.0)
    flipped = [np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]])]
    assert inference.agreement(ref, flipped)["top1_agreement"] == 0.5


def test_run_measured_counts_the_whole_process_tree_and_timestamps_stderr(tmp_path):
    """A grandchild holding ~200 MB must show in the tree peak; the parent alone stays small."""
    grandchild = "import time; b = bytearray(200 << 20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.5)"
    script = (f"import subprocess, sys; print('hello', file=sys.stderr, flush=True); "
              f"subprocess.run([sys.executable, '-c', {grandchild!r}]); print('bye', file=sys.stderr)")
    measured = measure.run_measured([sys.executable, "-c", script], env=measure.python_env())
    assert measured.rc == 0
    assert [text for _, text in measured.lines] == ["hello", "bye"]
    assert measured.lines[0][0] <= measured.lines[1][0] <= measured.wall_s
    assert measured.tree_peak_mb > 200
    assert measured.max_process_mb > 200  # VmHWM of the largest process of the tree (the grandchild)
    assert measured.max_process_mb < measured.tree_peak_mb + 1


def test_failing_child_process_reports_its_exit_code():
    measured = measure.run_measured([sys.executable, "-c", "import sys; sys.exit(3)"], env=measure.python_env())
    assert measured.rc == 3


def test_synthetic_images_are_seeded_and_load_like_edgekit(tmp_path):
    from edgekit.calibration.preprocess import load_image
    from edgekit.recipe.schema import Preprocess
    from edgekit.runtime.base import TensorSpec

    assert np.array_equal(bench_data.synthetic_image(32, 0, 5), bench_data.synthetic_image(32, 0, 5))
    assert not np.array_equal(bench_data.synthetic_image(32, 0, 5), bench_data.synthetic_image(32, 0, 6))
    paths = bench_data.write_images(tmp_path, 3, 32, seed=0)
    assert [p.name for p in paths] == ["img_00000.png", "img_00001.png", "img_00002.png"]
    pre = Preprocess(resize=(32, 32), scale=2 / 255, offset=-1.0)
    ours = bench_data.load_image(paths[1], (32, 32), "rgb", 2 / 255, -1.0)
    theirs = load_image(paths[1], TensorSpec("x", (1, 32, 32, 3), "float32"), pre)
    assert ours.shape == (1, 32, 32, 3) and np.array_equal(ours, theirs)
    assert -1.0 <= ours.min() < ours.max() <= 1.0 and ours.std() > 0.1


def _tflite_case(accuracy: bool) -> dict:
    case = {
        "input": "8x8x1", "calibration_samples": 300,
        "edgekit_validation": {"samples": 100, "runs": 50, "warmup": 10},
        "edgekit": {"wall_s": 22.0, "same_work_s": 19.0, "convert_s": 10.0},
        "raw": {"wall_s": 20.0, "convert_s": 10.5},
        "bytes": {"edgekit_fp32": 1000, "edgekit_int8": 250, "raw_fp32": 1000, "raw_int8": 300},
        "latency": {k: {"median_ms": v, "rounds_ms": [v, v * 1.5, v]} for k, v in
                    {"edgekit_fp32": 10.0, "edgekit_int8": 5.0, "raw_fp32": 10.0, "raw_int8": 4.0}.items()},
        "heldout": {s: {"top1_agreement": 1.0, "sqnr_db": 30.0, "samples": 8, "reference_distinct_top1": 5}
                    for s in ("edgekit", "raw")},
    }
    if accuracy:
        case["accuracy"] = {"samples": 400, "drop_pts": {"edgekit": 0.25, "raw": 0.5}, "report_drop_pts": 1.0,
                            "report_samples": 100}
    return case


def test_table_marks_each_target_pass_or_miss():
    results = {
        "tflite": {"digits": _tflite_case(True), "mobilenet_v2": {"error": "RuntimeError: boom | really"}},
        "cache": {"cold_s": 60.0, "rebuild_s": 1.2, "hit": True, "identical": True},
        "memory": {"runs": [{"calibration_samples": 100, "tree_peak_mb": 1000.0, "max_process_mb": 800.0},
                            {"calibration_samples": 1000, "tree_peak_mb": 1200.0, "max_process_mb": 820.0}],
                   "tree_ratio": 1.2, "process_ratio": 1.025},
    }
    rows = {row[1]: row for row in bench_table.build_rows(results)}
    total = next(r for m, r in rows.items() if m.startswith("compress wall s"))
    assert total[4:] == ["x1.100", "<= x1.10", "PASS"]
    assert rows["same work s (edgekit total minus float reference, validation, report)"][-1] == "PASS"
    assert rows["converter calls only s (FP32 + INT8)"][-1] == "PASS"
    assert rows["INT8/FP32 size"][2:4] == ["0.250", "0.300"] and rows["INT8/FP32 size"][-1] == "PASS"
    assert rows["INT8/FP32 latency"][2:5] == ["0.500", "0.400", "x1.250"] and rows["INT8/FP32 latency"][-1] == "MISS"
    assert rows["LiteRT latency ms FP32 -> INT8 (1 thread, median)"][2:4] == ["10 -> 5", "10 -> 4"]
    assert rows["INT8 latency ms"][-1] == "MISS"
    assert rows["accuracy drop pts, all 400 held-out digits"][-1] == "PASS"
    assert rows["accuracy drop pts, edgekit report (100 validation samples)"][-1] == "MISS"
    cache = next(r for m, r in rows.items() if m.startswith("cold compress"))
    assert cache[2] == "60.00 -> 1.20" and cache[-1] == "PASS"
    tree = next(r for m, r in rows.items() if m.startswith("peak RSS MB, whole process tree"))
    assert tree[-1] == "MISS"
    assert next(r for m, r in rows.items() if m.startswith("peak RSS MB, largest"))[-1] == "PASS"
    assert "ERROR: RuntimeError: boom | really" in rows
    assert not any(m.startswith("INT8 top-1") for m in rows)  # digits rows show accuracy instead
    table = bench_table.render_markdown(bench_table.build_rows(results))
    lines = table.splitlines()
    assert lines[0].startswith("| section | metric |") and "boom \\| really" in table
    assert all(len(re.split(r"(?<!\\)\|", line)) == len(bench_table.HEADER) + 2 for line in lines)


def test_onnx_rows_compare_against_the_raw_default():
    side = {"work_s": 30.0, "tree_peak_mb": 900.0, "int8_bytes": 260, "fp32_bytes": 1000, "top1_agreement": 0.9,
            "sqnr_db": 25.0, "samples": 24, "reference_distinct_top1": 7}
    onnx = {"calibration_samples": 64, "opset": 17, "heldout_samples": 24,
            "edgekit": side, "raw": dict(side, top1_agreement=0.95, sqnr_db=20.0, fp32_bytes=1100),
            "latency": {k: {"median_ms": v, "rounds_ms": [v, v]} for k, v in
                        {"fp32": 10.0, "edgekit_fp32": 10.0, "edgekit_int8": 4.0, "raw_int8": 6.0}.items()}}
    rows = {row[1]: row for row in bench_table.build_rows({"onnx": onnx})}
    assert rows["INT8 latency ms"][-1] == "PASS" and rows["INT8/FP32 latency"][-1] == "PASS"
    assert rows["INT8/FP32 size"][-1] == "PASS"
    agreement = next(r for m, r in rows.items() if m.startswith("INT8 top-1 agreement with FP32 (24 held-out"))
    assert "spans 7 classes" in agreement[1] and agreement[-1] == "MISS"
    assert rows["INT8 SQNR dB vs FP32 output"][2:4] == ["25.0", "20.0"]
    assert rows["INT8 SQNR dB vs FP32 output"][-1] == "PASS"
