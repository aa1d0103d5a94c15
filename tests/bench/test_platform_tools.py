"""`edgekit bench` with the platforms' own tools: benchmark_model over adb, trtexec over ssh.

Neither real binary can run here (benchmark_model is an Android ARM build, TensorRT needs an
NVIDIA GPU), so each is replaced by a RECORDED STAND-IN: an executable that checks the argv
edgekit gives it and prints one real recorded output of the tool (tests/devices/data/
benchmark_model/, tests/bench/data/trtexec/). Everything around it is real: the real adb client
and a loopback ADB device, the real ssh/scp clients and a loopback sshd, push + sha256 check,
the remote run, the parsers, the report.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from edgekit.bench import tools
from edgekit.bench.artifacts import Artifact
from tests.bench.conftest import ssh_entry
from tests.bench.test_bench_cli import bench, load
from tests.devices.fake_adbd import adb_server, fake_device_factory  # noqa: F401 (fixtures)

BENCHMARK_MODEL_OUT = Path(__file__).parents[1] / "devices" / "data" / "benchmark_model"
TRTEXEC_LOG = Path(__file__).parent / "data" / "trtexec" / "jetson_nano_trt8001_load_engine.log"


def recorded_standin(path: Path, recording: Path, required: list[str], one_of_files: list[str]) -> Path:
    """An executable that exits 2 unless every `required` flag is in its argv and one of the
    `one_of_files` flags names an existing file; then prints `recording` verbatim."""
    path.write_text(f"""#!{sys.executable}
# RECORDED STAND-IN, used only because the real tool cannot run on this test host.
import os, sys
args = sys.argv[1:]
missing = [flag for flag in {required!r} if flag not in args]
files = [a.split("=", 1)[1] for a in args if a.split("=", 1)[0] in {one_of_files!r}]
if missing or not files or not all(os.path.isfile(f) for f in files):
    sys.stderr.write("stand-in: bad argv %r (missing %r)\\n" % (args, missing))
    sys.exit(2)
sys.stdout.write(open({str(recording)!r}).read())
""")
    path.chmod(0o755)
    return path


def test_benchmark_model_over_adb_with_op_profile(build_dir, fake_device_factory, write_inventory,  # noqa: F811
                                                  tmp_path):
    fake = fake_device_factory()
    standin = recorded_standin(
        tmp_path / "benchmark_model", BENCHMARK_MODEL_OUT / "riscv64_mobilenet_v1_op_profiling.txt",
        ["--num_runs=7", "--warmup_runs=2", "--num_threads=2", "--min_secs=0.0",
         "--enable_op_profiling=true"], ["--graph"])
    inventory = write_inventory({"phone": {"kind": "adb", "address": fake.serial,
                                           "benchmark_model": str(standin)}})
    out = tmp_path / "report"
    code = bench(build_dir, "--device", "phone", "--inventory", inventory, "--runs", 7, "--warmup", 2,
                 "--threads", 2, "--op-profiling", "--out", out)
    assert code == 0
    report = load(out)
    rows = {r["artifact"]: r for r in report["rows"]}
    # no python on the phone: .tflite goes to benchmark_model, .onnx has no tool and is skipped
    assert rows["model_fp32.onnx"]["status"] == "skipped"
    assert "no python configured" in rows["model_fp32.onnx"]["error"]
    row = rows["model_int8.tflite"]
    assert row["status"] == "ok" and row["tool"] == "benchmark_model"
    lat = row["latency"]  # the recorded run's numbers, us -> ms; p50/p90/p99 never printed
    assert (lat["mean_ms"], lat["std_ms"], lat["min_ms"], lat["max_ms"]) == (2950.34, 109.798, 2727.568, 3189.954)
    assert lat["p50_ms"] is None and lat["p90_ms"] is None and lat["p99_ms"] is None
    assert lat["runs"] == 50 and lat["cold_start_ms"] == pytest.approx(17.187 + 3512.391)
    assert row["tool_versions"]["benchmark_model"].startswith("benchmark_model sha256:")
    ops = row["top_ops"]
    assert len(ops) == tools.TOP_OPS and ops[0]["avg_ms"] >= ops[-1]["avg_ms"]
    assert ops[0]["node_type"] in ("CONV_2D", "DEPTHWISE_CONV_2D")
    # the binary and the model were pushed and sha256-checked on the "phone"
    assert (fake.root / "edgekit" / "benchmark_model").read_bytes() == standin.read_bytes()
    (speedup,) = report["speedups"]
    assert speedup["stat"] == "mean_ms" and speedup["tool"] == "benchmark_model"
    assert "Top ops" in (out / "bench.html").read_text()


def test_forced_tool_not_configured_is_tool_failed(build_dir, tmp_path):
    code = bench(build_dir, "--tool", "benchmark_model", "--runs", 3, "--out", tmp_path / "r")
    assert code == 9
    rows = {r["artifact"]: r for r in load(tmp_path / "r")["rows"]}
    assert rows["model_int8.tflite"]["status"] == "tool_failed"
    assert "no benchmark_model: PATH" in rows["model_int8.tflite"]["error"]
    assert rows["model_fp32.onnx"]["status"] == "ok" and rows["model_fp32.onnx"]["tool"] == "harness"


def _artifact(name, fmt, precision="fp32", target=None):
    return Artifact(name=name, format=fmt, precision=precision, target=target, sha256="0" * 64, bytes=1)


@pytest.mark.parametrize("artifact, preferred, python, runtimes, platform, expected", [
    (_artifact("m.tflite", "tflite"), "auto", "python3", {"numpy": "2", "ai_edge_litert": "1"},
     tools.PlatformTools("bm"), "harness"),
    (_artifact("m.tflite", "tflite"), "auto", "python3", {"numpy": "2", "onnxruntime": "1"},
     tools.PlatformTools("bm"), "benchmark_model"),
    (_artifact("m.tflite", "tflite"), "benchmark_model", "python3",
     {"numpy": "2", "ai_edge_litert": "1"}, tools.PlatformTools("bm"), "benchmark_model"),
    (_artifact("m_trt_int8.onnx", "onnx", "int8"), "auto", "python3",
     {"numpy": "2", "onnxruntime": "1"}, tools.PlatformTools(trtexec="/t"), "trtexec"),
    (_artifact("m_trt_int8.onnx", "onnx", "int8"), "auto", "python3",
     {"numpy": "2", "onnxruntime": "1"}, tools.PlatformTools(), "harness"),
    (_artifact("m.plan", "trt-plan"), "harness", None, {}, tools.PlatformTools(trtexec="/t"), "trtexec"),
    (_artifact("m.plan", "trt-plan"), "auto", "python3", {}, tools.PlatformTools(), None),
])
def test_tool_choice(artifact, preferred, python, runtimes, platform, expected):
    tool, reason, _ = tools.choose(artifact, preferred, python, runtimes, platform)
    assert tool == expected and (reason is None) == (expected is not None)


@pytest.fixture
def trt_build(tmp_path, tiny_models):
    """FP32 ONNX for the harness, a TensorRT-target QDQ ONNX and a plan, as compress leaves them."""
    build = tmp_path / "trtbuild"
    build.mkdir()
    shutil.copyfile(tiny_models["onnx"], build / "model_fp32.onnx")
    shutil.copyfile(tiny_models["onnx"], build / "model_trt_int8.onnx")
    (build / "model.plan").write_bytes(b"serialized engine bytes (never deserialized here)")
    return build


def test_trtexec_over_ssh_plan_and_onnx(trt_build, sshd, write_inventory, tmp_path):
    standin = recorded_standin(tmp_path / "trtexec", TRTEXEC_LOG,
                               ["--iterations=100", "--duration=0", "--warmUp=200"],
                               ["--loadEngine", "--onnx"])
    entry = ssh_entry(sshd, tmp_path / "remote") | {"trtexec": str(standin)}
    inventory = write_inventory({"jetson": entry})
    out = tmp_path / "report"
    code = bench(trt_build, "--device", "jetson", "--inventory", inventory, "--runs", 100,
                 "--warmup", 2, "--out", out)
    assert code == 0
    report = load(out)
    rows = {r["artifact"]: r for r in report["rows"]}
    assert rows["model_fp32.onnx"]["tool"] == "harness" and rows["model_fp32.onnx"]["latency"]["runs"] == 100
    for name in ("model.plan", "model_trt_int8.onnx"):
        row = rows[name]
        assert row["status"] == "ok" and row["tool"] == "trtexec" and row["precision"] == "int8"
        lat = row["latency"]  # trtexec's host latency summary from the recorded Jetson Nano run
        assert (lat["p50_ms"], lat["p99_ms"], lat["mean_ms"], lat["min_ms"], lat["max_ms"]) == (
            40.3808, 40.6343, 40.3953, 40.2976, 40.6343)
        assert lat["p90_ms"] is None and lat["std_ms"] is None
        assert (lat["runs"], lat["warmup_runs"]) == (100, 1)
        assert row["gpu_compute_ms"]["median"] == 39.875
        assert row["tool_versions"]["trtexec"] == "TensorRT 8.0.1"
    assert report["speedups"] == []  # TensorRT INT8 vs onnxruntime FP32 is no precision speed-up
    md = (out / "bench.md").read_text()
    assert "| jetson | model.plan | int8 | ok | trtexec |" in md
    # --tool trtexec: the FP32 ONNX becomes an FP32 engine too, so the INT8 speed-up is same-tool
    code = bench(trt_build, "--device", "jetson", "--inventory", inventory, "--runs", 100,
                 "--tool", "trtexec", "--out", out)
    report = load(out)
    assert code == 0 and {r["tool"] for r in report["rows"]} == {"trtexec"}
    ups = {u["int8_artifact"]: u for u in report["speedups"]}
    assert set(ups) == {"model.plan", "model_trt_int8.onnx"}
    assert ups["model_trt_int8.onnx"]["same_format"] and not ups["model.plan"]["same_format"]
    assert ups["model.plan"]["speedup"] == 1.0  # the stand-in prints one recording for all


def test_trtexec_failure_is_tool_failed_with_its_error(trt_build, sshd, write_inventory, tmp_path):
    failing = tmp_path / "trtexec-fail"
    failing.write_text("#!/bin/sh\necho '[01/01/2024-00:00:00] [E] Error[1]: [stdArchiveReader.cpp::"
                       "StdArchiveReader::40] Error Code 1: Serialization (Serialization assertion "
                       "magicTagRead == kMAGIC_TAG failed.Magic tag does not match)'\n"
                       "echo '&&&& FAILED TensorRT.trtexec [TensorRT v8601]'\nexit 1\n")
    failing.chmod(0o755)
    entry = ssh_entry(sshd, tmp_path / "remote") | {"trtexec": str(failing)}
    code = bench(trt_build / "model.plan", "--device", "jetson",
                 "--inventory", write_inventory({"jetson": entry}), "--out", tmp_path / "r")
    assert code == 9
    (row,) = load(tmp_path / "r")["rows"]
    assert row["status"] == "tool_failed" and "Magic tag does not match" in row["error"]
    assert json.loads((tmp_path / "r" / "bench.json").read_text())["exit_code"] == 9


def test_trtexec_log_without_summary_is_a_tool_error():
    from edgekit.errors import DeviceToolError
    from edgekit.backends.tensorrt.trtexec_log import parse_trtexec_log

    cut = Path(__file__).parents[1] / "onnx" / "data" / "trtexec" / "trt_yolov10_inference_start.log"
    with pytest.raises(DeviceToolError, match="no performance summary"):
        parse_trtexec_log(cut.read_text()).latency_fields()  # a real log that ends mid-trace
    full = parse_trtexec_log(TRTEXEC_LOG.read_text())
    assert full.tensorrt_version == "8.0.1" and full.latency_fields()["runs"] == 100


def test_harness_on_loopback_adb_and_ssh_devices_in_one_run(build_dir, sshd, fake_device_factory,  # noqa: F811
                                                             write_inventory, tmp_path):
    """Issue 3's acceptance: FP32 and INT8 TFLite plus ONNX, the harness on a phone (adb) and a board
    (ssh) in parallel, real numbers from each, the plots, and the INT8 speed-up per device."""
    phone = fake_device_factory()
    inventory = write_inventory({"board": ssh_entry(sshd, tmp_path / "remote"),
                                 "phone": {"kind": "adb", "address": phone.serial, "python": sys.executable}})
    out = tmp_path / "report"
    code = bench(build_dir, "--device", "phone", "--device", "board", "--inventory", inventory,
                 "--runs", 10, "--warmup", 2, "--threads", 1, "--out", out)
    assert code == 0
    report = load(out)
    rows = {(r["device"], r["artifact"]): r for r in report["rows"]}
    assert set(rows) == {(d, a) for d in ("phone", "board")
                         for a in ("model_fp32.tflite", "model_int8.tflite", "model_fp32.onnx")}
    for row in rows.values():
        assert row["status"] == "ok" and row["tool"] == "harness", row
        assert len(row["latencies_ms"]) == 10 and row["latency"]["p50_ms"] > 0
    assert {u["device"] for u in report["speedups"]} == {"phone", "board"}
    phone_facts = next(d for d in report["devices"] if d["name"] == "phone")["facts"]
    assert phone_facts["model"]  # from getprop on the loopback device
    assert (out / "bench.html").read_text().count("data:image/png;base64,") >= 3
    assert "| phone | model_int8.tflite |" in (out / "bench.md").read_text()
