"""The benchmark_model parser on real outputs of the tool (see data/benchmark_model/SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.devices.benchmark_model import (
    benchmark_model_argv,
    parse_benchmark_model,
    parse_op_profile,
    parse_stat_line,
)
from edgekit.errors import DeviceToolError, UsageError
from edgekit.validate.latency import LatencySummary

DATA = Path(__file__).parent / "data" / "benchmark_model"


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_riscv_mobilenet_full_output():
    result = parse_benchmark_model(read("riscv64_mobilenet_v1_op_profiling.txt"))
    assert result.threads == 4
    assert (result.init_us, result.first_inference_us) == (17187, 3512391)
    assert result.warmup_avg_us == pytest.approx(3.51239e6)
    assert result.inference_avg_us == pytest.approx(2.95034e6)
    # warm-up printed as "count=1 curr=3512391" (one value), the timed runs in full
    assert result.warmup.count == 1 and result.warmup.min_us == result.warmup.max_us == 3512391
    assert result.warmup.std_us == 0
    stats = result.inference
    assert (stats.count, stats.first_us, stats.curr_us) == (50, 2990275, 2913402)
    assert (stats.min_us, stats.max_us, stats.std_us) == (2727568, 3189954, 109798)
    assert stats.avg_us == pytest.approx(2.95034e6)
    assert stats.median_us is None and stats.p95_us is None  # this build prints no percentiles
    assert (result.init_footprint_mb, result.overall_footprint_mb) == (4.21094, 46.0859)
    assert result.peak_memory_mb is None


def test_riscv_op_profile_is_from_the_regular_runs():
    result = parse_benchmark_model(read("riscv64_mobilenet_v1_op_profiling.txt"))
    assert len(result.top_ops) == 10  # not the 1-row initialization table (AllocateTensors)
    first = result.top_ops[0]
    assert first.node_type == "CONV_2D"
    assert first.name == "[MobilenetV1/MobilenetV1/Conv2d_5_pointwise/Relu6]:10"
    assert (first.avg_ms, first.percent, first.first_ms, first.times_called) == (277.374, 9.403, 263.724, 1)
    assert [op.avg_ms for op in result.top_ops] == sorted((op.avg_ms for op in result.top_ops), reverse=True)
    types = {row.node_type: row for row in result.node_types}
    assert list(types) == ["CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "SOFTMAX", "SQUEEZE"]
    assert (types["CONV_2D"].count, types["CONV_2D"].avg_ms, types["CONV_2D"].percent) == (15, 2651.853, 89.897)
    assert sum(row.count for row in result.node_types) == 31  # "Number of nodes executed: 31"


def test_riscv_latency_fields_are_the_tools_own_numbers():
    fields = parse_benchmark_model(read("riscv64_mobilenet_v1_op_profiling.txt")).latency_fields()
    assert fields == {
        "p50_ms": None,  # no median printed by this build
        "p90_ms": None,  # never printed by the tool: not estimated
        "p99_ms": None,
        "mean_ms": 2950.34,
        "std_ms": 109.798,
        "min_ms": 2727.568,
        "max_ms": 3189.954,
        "runs": 50,
        "warmup_runs": 1,
        "threads": 4,
        "cold_start_ms": 3529.578,
        "peak_rss_mb": None,
    }
    assert set(fields) == set(LatencySummary.model_fields)


def test_mi11_cpu_excerpt_with_old_memory_line():
    result = parse_benchmark_model(read("mi11_yolov5s_fp32_cpu.txt"))
    assert result.inference.count == 50 and result.inference.avg_us == 249684
    assert result.warmup is None  # the published excerpt starts at the timed runs
    assert (result.init_us, result.first_inference_us, result.warmup_avg_us) == (16242, 360262, 304586)
    assert (result.init_footprint_mb, result.overall_footprint_mb) == (4.92969, 138.809)
    fields = result.latency_fields(threads=4, warmup_runs=1)
    assert (fields["threads"], fields["warmup_runs"], fields["mean_ms"]) == (4, 1, 249.684)
    assert result.top_ops == [] and result.node_types == []


def test_mi11_nnapi_profile_tables():
    ops, types = parse_op_profile(read("mi11_yolov5s_nnapi_fp16_op_profile.txt"))
    assert [op.node_type for op in ops[:3]] == ["TfLiteNnapiDelegate"] * 3
    assert ops[0].name == "[model/tf.nn.silu_16/mul, model/tf.nn.silu_26/mul, model/tf.nn.silu_35/mul]:231"
    assert ops[0].avg_ms == 79.01 and ops[-1].node_type == "RESIZE_NEAREST_NEIGHBOR"
    assert [(t.node_type, t.count, t.avg_ms) for t in types] == [
        ("TfLiteNnapiDelegate", 3, 149.483),
        ("STRIDED_SLICE", 6, 8.347),
        ("RESIZE_NEAREST_NEIGHBOR", 2, 0.879),
    ]


def test_profile_without_timings_line_is_a_tool_error():
    with pytest.raises(DeviceToolError, match="no 'Inference timings in us' line"):
        parse_benchmark_model(read("mi11_yolov5s_nnapi_fp16_op_profile.txt"))


def test_failed_run_output_is_reported_with_its_last_lines():
    # the tail of a failed NNAPI run, as published in the same lp6m/yolov5s_android benchmark.md
    failed = (
        "INFO: Created TensorFlow Lite delegate for NNAPI.\n"
        "ERROR: Restored original execution plan after delegate application failure.\n"
        "Failed to apply NNAPI delegate.\nBenchmarking failed.\n"
    )
    with pytest.raises(DeviceToolError, match="Benchmarking failed"):
        parse_benchmark_model(failed)


def test_log_prefixes_are_stripped():
    prefixed = "".join(
        f"07-14 13:14:56.520 22838 22838 I tflite  : {line}\n" for line in read("mi11_yolov5s_fp32_cpu.txt").splitlines()
    )
    assert parse_benchmark_model(prefixed) == parse_benchmark_model(read("mi11_yolov5s_fp32_cpu.txt"))
    info = "".join(f"INFO: {line}\n" for line in read("riscv64_mobilenet_v1_op_profiling.txt").splitlines())
    assert parse_benchmark_model(info).inference.count == 50


def test_percentiles_when_the_build_prints_them():
    stats = parse_stat_line(
        "count=25 first=187533 curr=140990 min=140071 max=195121 avg=145528 std=13583 p5=140545 median=141253 p95=187533"
    )
    assert (stats.p5_us, stats.median_us, stats.p95_us) == (140545, 141253, 187533)


@pytest.mark.parametrize("line", ["count=abc", "count=5 first=1 curr=nan min=1 max=2 avg=1 std=0", "curr=5"])
def test_garbage_statistics_are_refused(line):
    with pytest.raises(DeviceToolError):
        parse_stat_line(line)


def test_latency_summary_from_the_tool():
    summary = parse_benchmark_model(read("riscv64_mobilenet_v1_op_profiling.txt")).to_latency_summary()
    assert summary.mean_ms == 2950.34 and summary.p90_ms is None


def test_command_line():
    argv = benchmark_model_argv(
        "/data/local/tmp/edgekit/benchmark_model",
        "/data/local/tmp/edgekit/a b;$(x).tflite",
        num_threads=4,
        num_runs=100,
        warmup_runs=5,
        enable_op_profiling=True,
        use_xnnpack=False,
    )
    assert argv == [
        "/data/local/tmp/edgekit/benchmark_model",
        "--graph=/data/local/tmp/edgekit/a b;$(x).tflite",  # one argv item: Device.run quotes it
        "--num_runs=100",
        "--warmup_runs=5",
        "--min_secs=0.0",
        "--warmup_min_secs=0.0",
        "--num_threads=4",
        "--enable_op_profiling=true",
        "--report_peak_memory_footprint=true",
        "--use_xnnpack=false",
    ]


@pytest.mark.parametrize(
    "kwargs", [{"num_runs": 0}, {"warmup_runs": -1}, {"num_threads": 0}, {"extra_flags": ["--x=1; rm -rf /"]}]
)
def test_command_line_rejects_bad_values(kwargs):
    with pytest.raises(UsageError):
        benchmark_model_argv("benchmark_model", "m.tflite", **kwargs)
