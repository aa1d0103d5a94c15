"""Parse trtexec output (TensorRT 7.x-10.x) and its `--exportLayerInfo` JSON into numbers.

Understood: the version banner, "Engine built in X sec.", warm-up and timing-trace counts, the
performance summary in both formats (one line per metric since 8.2: "Latency: min = ... ms,
..., percentile(99%) = ... ms"; and the older multi-line "Host Latency / min: ..."), the
throughput and wall times, the GPU-compute coefficient of variance, per-layer output precisions
from verbose "Layer(Type): name, Tactic: ..., in -> out" lines, [E] error lines and the final
&&&& PASSED/FAILED. Lines that match nothing are ignored; missing fields stay None.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Optional

from edgekit.errors import DeviceToolError
from edgekit.validate.latency import LatencySummary

_NUM = r"([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
_PREFIX = re.compile(r"^\[\d\d/\d\d/\d{4}-\d\d:\d\d:\d\d\] \[([A-Z])\] ")
_METRICS = {
    "Latency": "latency", "Host Latency": "latency", "GPU Compute Time": "gpu_compute", "GPU Compute": "gpu_compute",
    "Enqueue Time": "enqueue", "H2D Latency": "h2d", "D2H Latency": "d2h",
}  # fmt: skip
_ONE_LINE = re.compile(r"^(Latency|Enqueue Time|H2D Latency|GPU Compute Time|D2H Latency): (min = .*)$")
_FIELD = re.compile(r"(min|max|mean|median|percentile\((\d+(?:\.\d+)?)%\))\s*=?\s*" + _NUM + r" ms")
_OLD_FIELD = re.compile(r"^(min|max|mean|median): " + _NUM + r" ms")
_OLD_PCT = re.compile(r"^percentile: " + _NUM + r" ms at (\d+(?:\.\d+)?)%")
_LAYER = re.compile(r"Layer\(([^)]+)\): (.+?), Tactic: (\S+), (.*)$")
_DTYPE = re.compile(r"\((Int8|Half|Float|Int32|Int64|Bool|UInt8|FP8|BFloat16|Int4)\[")
_PRECISION = {"Int8": "int8", "Half": "fp16", "Float": "fp32", "BFloat16": "bf16", "FP8": "fp8", "Int4": "int4"}


@dataclass
class TrtexecReport:
    """What one trtexec run reported; times in ms unless the name says seconds."""

    tensorrt_version: Optional[str] = None
    passed: Optional[bool] = None
    build_time_s: Optional[float] = None
    throughput_qps: Optional[float] = None
    warmup_queries: Optional[int] = None
    timed_queries: Optional[int] = None
    total_host_walltime_s: Optional[float] = None
    total_gpu_compute_s: Optional[float] = None
    gpu_compute_cv_percent: Optional[float] = None
    latency: dict[str, float] = field(default_factory=dict)
    gpu_compute: dict[str, float] = field(default_factory=dict)
    enqueue: dict[str, float] = field(default_factory=dict)
    h2d: dict[str, float] = field(default_factory=dict)
    d2h: dict[str, float] = field(default_factory=dict)
    layer_precisions: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def precision_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.layer_precisions.values()).items()))

    def gpu_latency_summary(self) -> LatencySummary | None:
        """GPU compute time as edgekit's LatencySummary, when trtexec printed every field it needs.

        std comes from trtexec's coefficient of variance (printed as a warning when the run was
        unstable; absent otherwise), so the summary is often None and `gpu_compute` is the data.
        """
        g = self.gpu_compute
        if not {"min", "max", "mean", "median", "p90", "p99"} <= g.keys():
            return None
        if self.gpu_compute_cv_percent is None or not self.timed_queries:
            return None
        return LatencySummary(
            p50_ms=g["median"], p90_ms=g["p90"], p99_ms=g["p99"], mean_ms=g["mean"],
            std_ms=round(g["mean"] * self.gpu_compute_cv_percent / 100.0, 4), min_ms=g["min"], max_ms=g["max"],
            runs=self.timed_queries, warmup_runs=self.warmup_queries or 0,
        )  # fmt: skip

    def latency_fields(self) -> dict:
        """Host latency (H2D + GPU compute + D2H, what an application waits for) as LatencySummary
        fields in ms: p50 = median, p90/p99 where printed, std None (trtexec prints none).
        DeviceToolError when the log has no performance summary or no timed-query count."""
        lat = self.latency
        if not {"min", "max", "mean"} <= lat.keys() or not self.timed_queries:
            detail = " | ".join(self.errors[-2:]) or "no 'Latency: min = ...' and 'Timing trace has N queries' lines"
            raise DeviceToolError(f"trtexec printed no performance summary: {detail}")
        return {"p50_ms": lat.get("median"), "p90_ms": lat.get("p90"), "p99_ms": lat.get("p99"),
                "mean_ms": lat["mean"], "std_ms": None, "min_ms": lat["min"], "max_ms": lat["max"],
                "runs": self.timed_queries, "warmup_runs": self.warmup_queries}

    def to_dict(self) -> dict:
        data = asdict(self)
        data["precision_counts"] = self.precision_counts()
        summary = self.gpu_latency_summary()
        data["gpu_latency_summary"] = summary.model_dump() if summary else None
        return data


def _key(label: str, pct: str | None) -> str:
    if pct is None:
        return label
    return f"p{pct.rstrip('0').rstrip('.') if '.' in pct else pct}"


def _float(text: str) -> float:
    return float(text)


def parse_trtexec_log(text: str) -> TrtexecReport:
    """Parse the combined stdout/stderr of one trtexec run."""
    report = TrtexecReport()
    section: str | None = None  # the current old-format block ("Host Latency", ...)
    for raw in text.splitlines():
        line = raw.rstrip()
        match = _PREFIX.match(line)
        level = match.group(1) if match else None
        body = line[match.end():] if match else line.strip()
        if level == "E":
            report.errors.append(body)
        if _parse_banner(report, body):
            continue
        one = _ONE_LINE.match(body)
        if one:
            target = getattr(report, _METRICS[one.group(1)])
            for m in _FIELD.finditer(one.group(2)):
                target[_key(m.group(1).split("(")[0] if m.group(2) is None else "p", m.group(2))] = _float(m.group(3))
            section = None
            continue
        if body in _METRICS:
            section = _METRICS[body]
            continue
        if section is not None:
            old = _OLD_FIELD.match(body)
            pct = _OLD_PCT.match(body)
            if old:
                getattr(report, section)[old.group(1)] = _float(old.group(2))
                continue
            if pct:
                getattr(report, section)[_key("p", pct.group(2))] = _float(pct.group(1))
                continue
            section = None
        layer = _LAYER.search(body)
        if layer:
            outputs = layer.group(4).rsplit(" -> ", 1)[-1]
            dtypes = _DTYPE.findall(outputs)
            if dtypes:
                report.layer_precisions[layer.group(2)] = _PRECISION.get(dtypes[0], dtypes[0].lower())
    return report


_SIMPLE = [
    (re.compile(r"^TensorRT version: (\S+)"), "tensorrt_version", str),
    (re.compile(r"Engine built in " + _NUM + " sec"), "build_time_s", float),
    (re.compile(r"^Throughput: " + _NUM + " qps"), "throughput_qps", float),
    (re.compile(r"^Warmup completed (\d+) queries"), "warmup_queries", int),
    (re.compile(r"^Timing trace has (\d+) queries"), "timed_queries", int),
    (re.compile(r"^Total Host Walltime: " + _NUM + " s"), "total_host_walltime_s", float),
    (re.compile(r"^Total GPU Compute Time: " + _NUM + " s"), "total_gpu_compute_s", float),
    (re.compile(r"coefficient of variance(?: of GPU compute time)? = " + _NUM + "%"), "gpu_compute_cv_percent", float),
]
_RESULT = re.compile(r"^&&&& (PASSED|FAILED) TensorRT\.trtexec(?: \[TensorRT v(\d+)\])?")


def _version_from_int(code: str) -> str:
    """8601 -> 8.6.1, 100200 -> 10.2.0 (trtexec's NV_TENSORRT_VERSION banners)."""
    number = int(code)
    if number >= 100000:
        return f"{number // 10000}.{number // 100 % 100}.{number % 100}"
    return f"{number // 1000}.{number // 100 % 10}.{number % 100}"


def _parse_banner(report: TrtexecReport, body: str) -> bool:
    for pattern, attr, kind in _SIMPLE:
        m = pattern.search(body)
        if m:
            value = m.group(1)
            if attr == "tensorrt_version" and value.isdigit():  # "TensorRT version: 8001"
                value = _version_from_int(value)
            setattr(report, attr, kind(value))
            return True
    m = _RESULT.match(body) or re.match(r"^&&&& (RUNNING) TensorRT\.trtexec \[TensorRT v(\d+)\]", body)
    if m:
        if m.group(1) != "RUNNING":
            report.passed = m.group(1) == "PASSED"
        if m.group(2) and report.tensorrt_version is None:
            report.tensorrt_version = _version_from_int(m.group(2))
        return True
    return False


def parse_layer_info_json(text: str) -> dict[str, str]:
    """Layer name -> output precision from trtexec `--exportLayerInfo` JSON (detailed verbosity)."""
    data = json.loads(text)
    layers = data.get("Layers", []) if isinstance(data, dict) else []
    precisions = {}
    for layer in layers:
        if not isinstance(layer, dict) or not isinstance(layer.get("Outputs"), list) or not layer["Outputs"]:
            continue
        fmt = str(layer["Outputs"][0].get("Format/Datatype", ""))
        for token, name in (("Int8", "int8"), ("FP16", "fp16"), ("Half", "fp16"), ("FP32", "fp32"), ("Float", "fp32")):
            if token in fmt:
                precisions[str(layer.get("Name"))] = name
                break
    return precisions


_ONNX_LAYER = re.compile(r"\[ONNX Layer: ([^\]]+)\]")
_INPUT_PRECISION = (("int8", "int8"), ("fp16", "fp16"), ("half", "fp16"), ("fp32", "fp32"), ("float", "fp32"))


def parse_layer_inputs(text: str) -> dict[str, str]:
    """ONNX node name -> the precision its engine layer computes in (the datatype of the layer's
    first input), from trtexec `--exportLayerInfo` JSON. A fused layer ("W + /Q_w + /conv/Conv +
    /relu/Relu", or TensorRT 10's Metadata "[ONNX Layer: /conv/Conv]") names each node it holds."""
    data = json.loads(text)
    found = {}
    for layer in data.get("Layers", []) if isinstance(data, dict) else []:
        if not isinstance(layer, dict) or not isinstance(layer.get("Inputs"), list) or not layer["Inputs"]:
            continue
        first = layer["Inputs"][0]
        fmt = str(first.get("Format/Datatype", "")).lower() if isinstance(first, dict) else ""
        precision = next((name for token, name in _INPUT_PRECISION if token in fmt), None)
        if precision is None:
            continue
        names = [part.strip() for part in str(layer.get("Name", "")).split(" + ")]
        names += _ONNX_LAYER.findall(str(layer.get("Metadata", "")))
        for name in names:
            if name:
                found[name] = precision
    return found
