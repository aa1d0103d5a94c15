"""trtexec log parsing on real recorded logs, and the device build with a recorded stand-in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgekit.devices.base import CommandResult
from edgekit.errors import DeviceToolError
from edgekit.backends.tensorrt.trtexec import build_engine_on_device, calibration_cache_text, trt_version_code
from edgekit.backends.tensorrt.trtexec_log import parse_layer_info_json, parse_trtexec_log

DATA = Path(__file__).parent / "data" / "trtexec"


def _log(name):
    return parse_trtexec_log((DATA / name).read_text())


def test_trt84_summary():
    r = _log("trt8400_xavier_summary.log")
    assert r.tensorrt_version == "8.4.0" and r.passed is True
    assert r.throughput_qps == 41087.7
    assert r.latency == {"min": 0.387207, "max": 0.447357, "mean": 0.402238, "median": 0.401947, "p99": 0.420288}
    assert r.gpu_compute["median"] == 0.388443 and r.total_gpu_compute_s == 2.99202
    assert r.gpu_latency_summary() is None  # no p90 and no std in this log


def test_percentiles_90_95_and_old_format():
    r = _log("trt_ptlflow_p90.log")
    assert r.gpu_compute["p90"] == 30.4037 and r.gpu_compute["p95"] == 30.4156 and r.h2d["p99"] == 0.255188
    old = _log("trt8_old_format.log")
    assert old.latency == {"min": 1.64058, "max": 6.2915, "mean": 1.66069, "median": 1.65601, "p99": 1.67065}


def test_counts_and_layer_precisions():
    r = _log("trt_yolov10_inference_start.log")
    assert (r.warmup_queries, r.timed_queries) == (1, 1132)
    layers = _log("trt10_layer_info.log")
    assert layers.precision_counts() == {"fp16": 1, "fp32": 1}
    info = {"Layers": [{"Name": "conv1 + relu", "Outputs": [{"Format/Datatype": "Row major Int8 format"}]}]}
    assert parse_layer_info_json(json.dumps(info)) == {"conv1 + relu": "int8"}


def test_calibration_cache_format():
    assert trt_version_code("8.6.1") == 8601 and trt_version_code("10.3.0") == 100300
    text = calibration_cache_text({"input": 1.0 / 127, "conv": 0.5}, "8.6.1")
    assert text.splitlines() == ["TRT-8601-EntropyCalibration2", "conv: 3f000000", "input: 3c010204"]


class TempDirDevice:
    """A LocalDevice-like Device: 'remote' paths live under a temp dir; PATH can be extended."""

    name = "local-test"

    def __init__(self, workdir: Path, path_dirs=()):
        self.workdir = str(workdir)
        self.env = dict(os.environ, PATH=os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"]))

    def run(self, argv, timeout, check=True):
        start = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env)
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)

    def push(self, local, remote, timeout):
        shutil.copyfile(local, remote)

    def pull(self, remote, local, timeout):
        if not Path(remote).exists():
            raise DeviceToolError("no such file on the device", remote)
        shutil.copyfile(remote, local)


def _standin(bin_dir: Path, log: Path, rc: int = 0) -> None:
    """A trtexec stand-in: prints a real recorded log, writes --saveEngine (used only without trtexec)."""
    script = bin_dir / "trtexec"
    script.write_text(f"""#!{sys.executable}
import sys
for arg in sys.argv[1:]:
    if arg.startswith("--saveEngine="):
        open(arg.split("=", 1)[1], "wb").write(b"engine")
print(open({str(log)!r}).read())
sys.exit({rc})
""")
    script.chmod(0o755)


@pytest.fixture
def onnx_file(tmp_path):
    import onnx

    from tests.onnx.models import conv_bn_model

    path = tmp_path / "m_trt_int8.onnx"
    onnx.save(conv_bn_model(dynamic=False), path)
    return path


@pytest.mark.skipif(shutil.which("trtexec") is not None, reason="real trtexec present: the ssh e2e test covers it")
def test_build_on_device_with_recorded_standin(tmp_path, onnx_file):
    (tmp_path / "bin").mkdir()
    (tmp_path / "remote").mkdir()
    _standin(tmp_path / "bin", DATA / "trt8400_xavier_summary.log")
    out = tmp_path / "out"
    out.mkdir()
    device = TempDirDevice(tmp_path / "remote", [tmp_path / "bin"])
    result = build_engine_on_device(device, onnx_file, out)
    assert result["built"] and (out / result["engine"]).read_bytes() == b"engine"
    assert result["trtexec"]["throughput_qps"] == 41087.7
    assert "--saveEngine=" in result["command"] and result["layer_info"].startswith("not available")
    assert (out / result["log"]).read_text().startswith("# source:")


def test_trtexec_missing_or_failing(tmp_path, onnx_file):
    (tmp_path / "remote").mkdir()
    with pytest.raises(DeviceToolError, match="trtexec not found"):
        build_engine_on_device(TempDirDevice(tmp_path / "remote"), onnx_file, tmp_path)
    (tmp_path / "bin").mkdir()
    failing = tmp_path / "fail.log"
    failing.write_text("[01/01/2024-00:00:00] [E] Error[4]: [network.cpp::validate::2997] Error Code 4: bad\n"
                       "&&&& FAILED TensorRT.trtexec [TensorRT v8601] # trtexec\n")  # fmt: skip
    _standin(tmp_path / "bin", failing, rc=1)
    with pytest.raises(DeviceToolError, match=r"trtexec failed \(exit 1\).*Error Code 4"):
        build_engine_on_device(TempDirDevice(tmp_path / "remote", [tmp_path / "bin"]), onnx_file, tmp_path)


def test_engine_layer_precisions_by_onnx_node():
    """A fused QDQ layer names each ONNX node it holds ("W + /Q_w + /conv/Conv + /relu/Relu", as
    TensorRT 8.x prints them; TensorRT 10 also lists them in Metadata); its first input's datatype
    is the precision it computes in."""
    from edgekit.backends.tensorrt.precision import engine_check
    from edgekit.backends.tensorrt.trtexec_log import parse_layer_inputs

    info = {"Layers": [
        {"Name": "W + /Q_w + /conv/Conv + /relu/Relu", "Inputs": [{"Format/Datatype": "Channel major INT8 format"}],
         "Outputs": [{"Format/Datatype": "Row major linear FP16 format"}]},
        {"Name": "fc", "Metadata": "[ONNX Layer: /fc/MatMul]\x1f[ONNX Layer: /fc/Add]",
         "Inputs": [{"Format/Datatype": "Row major linear FP16 format"}], "Outputs": []},
        {"Name": "broken", "Inputs": "not a list"},
    ]}
    ran = parse_layer_inputs(json.dumps(info))
    assert ran["/conv/Conv"] == "int8" and ran["/fc/MatMul"] == "fp16" and "broken" not in ran
    plan = {"layers": [{"node": "/conv/Conv", "precision": "int8"}, {"node": "/fc/MatMul", "precision": "int8"},
                       {"node": "/head/Gemm", "precision": "fp16"}]}
    check = engine_check(plan, ran)
    assert check["matched_layers"] == 2 and check["planned_layers"] == 3
    assert check["differs"] == ["/fc/MatMul: planned int8, engine fp16"]
    assert plan["layers"][0]["engine"] == "int8" and "engine" not in plan["layers"][2]
