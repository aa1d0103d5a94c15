"""Which tool measures an artifact on a device, and the platform tools' runs (benchmark_model, trtexec).

Choice (`--tool auto`, the default), per artifact and device:
- .tflite: the harness when the device has python with numpy and a TFLite runtime, else
  TFLite's `benchmark_model` when the inventory entry names one (a host path, pushed to the device);
- .onnx: the harness (numpy + onnxruntime); a TensorRT-target ONNX (`*_trt_int8.onnx`) goes to
  `trtexec` (built into an engine and benchmarked in one run) when the entry names one;
- TensorRT plans (.plan/.engine): `trtexec --loadEngine` (nothing else can run them).
`--tool NAME` forces NAME for the artifacts it can run (harness: tflite/onnx, benchmark_model:
tflite, trtexec: onnx/plans) and leaves the others on auto. No usable tool -> a skipped row whose
reason says what to install or configure; a forced tool that is not configured -> tool_failed.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from edgekit.bench.artifacts import Artifact
from edgekit.bench.schema import OpTime
from edgekit.validate.latency import LatencySummary
from edgekit.devices.base import Device
from edgekit.errors import DeviceToolError
from edgekit.fsutil import sha256_file

TOOLS = ("harness", "benchmark_model", "trtexec")
CAN_RUN = {"harness": ("tflite", "onnx"), "benchmark_model": ("tflite",), "trtexec": ("onnx", "trt-plan")}
TFLITE_RUNTIMES = ("ai_edge_litert", "tflite_runtime")
TOP_OPS = 10
TOOL_TIMEOUT_S = 120.0


@dataclass
class PlatformTools:
    """The inventory entry's tools: benchmark_model is a host path, trtexec a device path."""

    benchmark_model: Optional[str] = None
    trtexec: Optional[str] = None


def is_tensorrt(artifact: Artifact) -> bool:
    """A TensorRT plan, or an ONNX model built for TensorRT (compress's `<stem>_trt_int8.onnx`)."""
    return artifact.format == "trt-plan" or artifact.target == "tensorrt" or (
        artifact.format == "onnx" and artifact.name.lower().endswith("_trt_int8.onnx"))


def harness_missing(artifact: Artifact, python: str | None, runtimes: dict[str, str]) -> str | None:
    """Why the harness cannot run this artifact on the device (None: it can)."""
    if not python:
        return "no python configured for the harness"
    if "numpy" not in runtimes:
        return f"{python} on the device has no numpy"
    if artifact.format == "tflite" and not any(name in runtimes for name in TFLITE_RUNTIMES):
        return f"{python} on the device has no TFLite runtime (pip install ai-edge-litert)"
    if artifact.format == "onnx" and "onnxruntime" not in runtimes:
        return f"{python} on the device has no onnxruntime"
    return None


def choose(artifact: Artifact, preferred: str, python: str | None, runtimes: dict[str, str],
           tools: PlatformTools) -> tuple[str | None, str | None, bool]:
    """(tool, reason, forced): the tool to use or None with the reason nothing can run it."""
    configured = {"harness": harness_missing(artifact, python, runtimes) is None,
                  "benchmark_model": bool(tools.benchmark_model), "trtexec": bool(tools.trtexec)}
    if preferred != "auto" and artifact.format in CAN_RUN[preferred]:
        if configured[preferred]:
            return preferred, None, True
        why = (harness_missing(artifact, python, runtimes) if preferred == "harness"
               else f"--tool {preferred}, but the device entry has no {preferred}: PATH")
        return None, why, True
    if artifact.format == "trt-plan":
        order = ["trtexec"]
    elif artifact.format == "tflite":
        order = ["harness", "benchmark_model"]
    else:
        order = ["trtexec", "harness"] if is_tensorrt(artifact) else ["harness"]
    for tool in order:
        if configured[tool]:
            return tool, None, False
    reasons = {"harness": harness_missing(artifact, python, runtimes),
               "benchmark_model": "no benchmark_model: PATH in the device entry",
               "trtexec": "no trtexec: PATH in the device entry"}
    return None, "; ".join(reasons[tool] for tool in order), False


def _push_timeout(size: int) -> float:
    return 60.0 + size / 1e6


class BenchmarkModelRun:
    """TFLite's benchmark_model on a device: pushed once (sha256-verified), then one run per model."""

    def __init__(self, device: Device, local_binary: str):
        self.device, self.local = device, Path(local_binary).expanduser()
        self.remote: str | None = None
        self.version: str | None = None

    def _ensure(self) -> str:
        if self.remote is None:
            if not self.local.is_file():
                raise DeviceToolError(f"benchmark_model binary {self.local} not found on this host",
                                      self.device.name)
            remote = posixpath.join(self.device.workdir, "benchmark_model")
            self.device.push(str(self.local), remote, timeout=_push_timeout(self.local.stat().st_size))
            self.device.run(["chmod", "755", remote], timeout=TOOL_TIMEOUT_S)
            self.remote = remote
            self.version = f"{self.local.name} sha256:{sha256_file(self.local)[:16]}"
        return self.remote

    def measure(self, remote_model: str, *, runs: int, warmup: int, threads: int | None,
                affinity: str | None, duration_s: float | None, op_profiling: bool,
                timeout: float) -> dict:
        """Row fields from one run. Sustained mode: `--min_secs=D` with one required run."""
        from edgekit.devices.benchmark_model import benchmark_model_argv, parse_benchmark_model

        binary = self._ensure()
        argv = benchmark_model_argv(
            binary, remote_model, num_threads=threads, num_runs=1 if duration_s else runs,
            warmup_runs=max(warmup, 1), min_secs=duration_s or 0.0,
            max_secs=duration_s * 1.5 if duration_s else None, enable_op_profiling=op_profiling)
        if affinity:
            argv = ["taskset", affinity, *argv]
        result = self.device.run(argv, timeout=timeout, check=False)
        text = result.stdout + "\n" + result.stderr
        if result.returncode != 0:
            from edgekit.errors import condense

            raise DeviceToolError(f"benchmark_model exited {result.returncode}: {condense(text, last=True)}",
                                  self.device.name)
        parsed = parse_benchmark_model(text)
        latency = LatencySummary(**parsed.latency_fields(threads=threads, warmup_runs=warmup))
        top = sorted(parsed.top_ops, key=lambda op: op.avg_ms, reverse=True)[:TOP_OPS]
        return {
            "latency": latency,
            "load_ms": round(parsed.init_us / 1000.0, 4),
            "first_inference_ms": round(parsed.first_inference_us / 1000.0, 4),
            "runtime": "TFLite benchmark_model",
            "tool_versions": {"benchmark_model": self.version},
            "top_ops": [OpTime(node_type=op.node_type, name=op.name, avg_ms=op.avg_ms,
                               percent=op.percent, times_called=op.times_called) for op in top],
        }


class TrtexecRun:
    """trtexec on a device: `--loadEngine` for plans, `--onnx` (build + benchmark) for ONNX."""

    def __init__(self, device: Device, trtexec: str):
        self.device, self.trtexec = device, trtexec

    def measure(self, artifact: Artifact, remote_model: str, *, runs: int, warmup: int,
                duration_s: float | None, timeout: float) -> dict:
        """Row fields from one run: host latency summary, GPU compute time, build time."""
        from edgekit.backends.tensorrt.trtexec import last_errors, trtexec_bench_argv
        from edgekit.backends.tensorrt.trtexec_log import parse_trtexec_log

        plan = artifact.format == "trt-plan"
        argv = trtexec_bench_argv(
            self.trtexec, engine=remote_model if plan else None,
            onnx=None if plan else remote_model, precision=artifact.precision, iterations=runs,
            duration_s=duration_s, warmup_ms=200 if warmup else 0,
            timing_cache=None if plan else posixpath.join(self.device.workdir, "timing.cache"))
        result = self.device.run(argv, timeout=timeout, check=False)
        log = result.stdout + ("\n" + result.stderr if result.stderr else "")
        if result.returncode != 0:
            raise DeviceToolError(f"trtexec failed on {artifact.name} (exit {result.returncode}): "
                                  f"{last_errors(log)}", self.device.name)
        report = parse_trtexec_log(log)
        try:
            latency = LatencySummary(**report.latency_fields())
        except DeviceToolError as err:
            raise DeviceToolError(f"{artifact.name}: {err.problem}", self.device.name) from None
        version = report.tensorrt_version or "unknown"
        return {
            "latency": latency,
            "runtime": f"TensorRT {version}",
            "tool_versions": {"trtexec": f"TensorRT {version}"},
            "gpu_compute_ms": dict(report.gpu_compute),
            "build_time_s": report.build_time_s,
        }
