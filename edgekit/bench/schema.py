"""The bench report schema (bench.json, schema_version 1) and the harness result it is built from.

Row status: ok | gate_failed | tool_failed | inconclusive | host_key_refused | skipped.
Row tool: harness (edgekit's own, every latency kept) | benchmark_model | trtexec (their printed
statistics: fields a tool does not print stay None, never estimated).
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edgekit.validate.latency import LatencySummary

SCHEMA_VERSION = 1
Status = Literal["ok", "gate_failed", "tool_failed", "inconclusive", "host_key_refused", "skipped"]
Tool = Literal["harness", "benchmark_model", "trtexec"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HarnessResult(BaseModel):
    """What harness.py prints (ok=True); parsed defensively: unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore")

    harness_version: Literal[1]
    ok: Literal[True]
    runtime: dict[str, str]
    python: str
    numpy: str
    threads: Optional[int] = None
    affinity: Optional[list[int]] = None
    warmup_runs: int = Field(ge=0)
    load_ms: float = Field(ge=0)
    first_inference_ms: float = Field(ge=0)
    cold_start_ms: float = Field(ge=0)
    latencies_ms: list[float] = Field(min_length=1)
    timestamps_s: list[float]
    wall_s: float = Field(ge=0)
    duration_s: Optional[float] = None
    peak_rss_mb: Optional[float] = None
    governor: Optional[str] = None
    thermal_before: dict[str, float] = Field(default_factory=dict)
    thermal_after: dict[str, float] = Field(default_factory=dict)


class DeviceInfo(_Strict):
    """A device as seen during the run: facts are None when the device did not say."""

    name: str
    kind: str
    status: Status
    error: Optional[str] = None
    facts: dict = Field(default_factory=dict)


class Throttling(_Strict):
    """Evidence of thermal throttling over one run (None when it cannot be judged)."""

    detected: Optional[bool] = None
    temp_rise_c: Optional[float] = None
    slowdown: Optional[float] = Field(None, description="last-tenth median / first-tenth median")
    reason: Optional[str] = None


class OpTime(_Strict):
    """One row of a per-op profile (benchmark_model --enable_op_profiling): average ms per call."""

    node_type: str
    name: str
    avg_ms: float
    percent: Optional[float] = None
    times_called: Optional[int] = None


class OutputAccuracy(_Strict):
    """One output of the device run against the host FP32 reference on the same inputs."""

    name: str
    max_abs_error: float
    cosine: float
    sqnr_db: Optional[float] = Field(None, description="None when the outputs are identical (inf)")
    top1_agreement: Optional[float] = Field(None, description="None for outputs without a class axis")


class Accuracy(_Strict):
    """On-device outputs vs the host run of the FP32 reference artifact; `error` when not measured."""

    reference: Optional[str] = None
    inputs: Optional[str] = None
    samples: Optional[int] = None
    outputs: list[OutputAccuracy] = Field(default_factory=list)
    error: Optional[str] = None


class Row(_Strict):
    """One artifact on one device."""

    device: str
    artifact: str
    format: str
    precision: str
    sha256: str
    status: Status
    error: Optional[str] = None
    tool: Optional[Tool] = None
    latency: Optional[LatencySummary] = None
    load_ms: Optional[float] = None
    first_inference_ms: Optional[float] = None
    runtime: Optional[str] = None
    tool_versions: dict[str, str] = Field(default_factory=dict)
    governor: Optional[str] = None
    thermal_before: dict[str, float] = Field(default_factory=dict)
    thermal_after: dict[str, float] = Field(default_factory=dict)
    throttling: Optional[Throttling] = None
    sustained_s: Optional[float] = None
    latencies_ms: list[float] = Field(default_factory=list)
    timestamps_s: list[float] = Field(default_factory=list)
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    outputs_file: Optional[str] = None
    top_ops: list[OpTime] = Field(default_factory=list)
    gpu_compute_ms: dict[str, float] = Field(default_factory=dict)
    build_time_s: Optional[float] = None
    accuracy: Optional[Accuracy] = None
    host_agreement: Optional[Accuracy] = Field(
        None, description="the same artifact's outputs on this host vs the device's (other ISA)")
    emulated: Optional[str] = Field(None, description="latency from an emulator: never gated")

    @field_validator("latency", mode="before")
    @classmethod
    def _any_summary(cls, value):
        return value.model_dump() if isinstance(value, LatencySummary) else value


class Speedup(_Strict):
    """INT8 vs FP32 on one device: fp32 `stat` / int8 `stat` (p50, or mean where a tool lacks p50)."""

    device: str
    int8_artifact: str
    fp32_artifact: str
    speedup: float
    same_format: bool
    tool: Optional[Tool] = None
    stat: Literal["p50_ms", "mean_ms"] = "p50_ms"


class GateResult(_Strict):
    gate: str
    device: str
    artifact: str
    value: Optional[float]
    limit: float
    passed: bool


class Settings(_Strict):
    tool: str = "auto"
    threads: Optional[int] = None
    runs: int
    warmup: int
    duration_s: Optional[float] = None
    max_latency_ms: Optional[float] = None
    latency_stat: str = "p50_ms"
    min_speedup: Optional[float] = None
    op_profiling: bool = False
    accuracy_inputs: Optional[str] = None


class BenchReport(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    edgekit_version: str
    created_at: str
    build: str
    settings: Settings
    status: Status
    exit_code: int
    devices: list[DeviceInfo]
    rows: list[Row]
    speedups: list[Speedup] = Field(default_factory=list)
    gates: list[GateResult] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list, description="e.g. a gate no row could be judged by")
