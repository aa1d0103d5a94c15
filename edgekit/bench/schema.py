"""The bench report schema (bench.json, schema_version 1) and the harness result it is built from.

Row status: ok | gate_failed | tool_failed | inconclusive | host_key_refused | skipped.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from edgekit.validate.latency import LatencySummary

SCHEMA_VERSION = 1
Status = Literal["ok", "gate_failed", "tool_failed", "inconclusive", "host_key_refused", "skipped"]


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


class Row(_Strict):
    """One artifact on one device."""

    device: str
    artifact: str
    format: str
    precision: str
    sha256: str
    status: Status
    error: Optional[str] = None
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


class Speedup(_Strict):
    """INT8 vs FP32 on one device: fp32 p50 / int8 p50."""

    device: str
    int8_artifact: str
    fp32_artifact: str
    speedup: float
    same_format: bool


class GateResult(_Strict):
    gate: str
    device: str
    artifact: str
    value: Optional[float]
    limit: float
    passed: bool


class Settings(_Strict):
    threads: Optional[int] = None
    runs: int
    warmup: int
    duration_s: Optional[float] = None
    max_latency_ms: Optional[float] = None
    latency_stat: str = "p50_ms"
    min_speedup: Optional[float] = None


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
