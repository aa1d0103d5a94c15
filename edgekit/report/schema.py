"""report.json: one versioned schema for every target. Bump SCHEMA_VERSION on breaking changes."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

from edgekit.validate.evaluate import AccuracyReport
from edgekit.validate.latency import LatencySummary

SCHEMA_VERSION = 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TensorInfo(Strict):
    name: str
    shape: list[int]
    dtype: str


class ModelInfo(Strict):
    path: str
    format: str
    sha256: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    fixed_dims: dict[str, dict[str, str]] = Field(default_factory=dict)
    export: Optional[dict] = Field(None, description="PyTorch models: exporter, opset, and the exported "
                                   "ONNX graph's error vs the PyTorch outputs on the held-out samples")


class CalibrationInfo(Strict):
    source: Optional[str]
    synthetic: bool = Field(description="validation on seeded random inputs (no data given)")
    calibration_samples: int
    validation_samples: int
    labels: bool
    split_rule: str
    split_file: Optional[str] = None


class PreprocessingInfo(Strict):
    """The image preprocessing used and where each value came from (flag, recipe, model, probe, default)."""

    applies: bool = Field(description="false for array (.npy/.npz) data, fed as stored")
    values: dict[str, Any]
    origins: dict[str, str]
    evidence: list[str] = Field(default_factory=list)
    inside_model: Optional[str] = Field(None, description="normalization the model applies itself")
    probe: Optional[dict[str, Any]] = Field(None, description="float accuracy of each candidate on labelled samples")
    float_accuracy: Optional[dict[str, Any]] = Field(None, description="float model vs chance on the validation labels")


class FusionInfo(Strict):
    source_op_counts: dict[str, int]
    target_op_counts: dict[str, int]
    groups: list[dict[str, Any]]


class GateResult(Strict):
    gate: str
    limit: float
    value: Optional[float]
    passed: bool
    detail: str = ""


class ArtifactEntry(Strict):
    name: str
    path: str
    format: str
    target: str
    precision: str
    bytes: int
    size_ratio: float = Field(description="bytes / FP32 bytes of the same target")
    sha256: str
    op_counts: dict[str, int] = Field(default_factory=dict)
    compute_dtypes: dict[str, int] = Field(default_factory=dict, description="activation/weight dtypes of conv/dense ops")
    compression: dict[str, Any] = Field(default_factory=dict, description=(
        "macs, mac_share (conv/matmul MACs per arithmetic: int8, int16, float16, float32, hybrid), "
        "compute_ops, ops (quantized, float, hybrid, conversion, other)"))
    flags: list[str] = Field(default_factory=list, description="int8_quantized_nothing, int8_slower_than_fp32")
    accuracy: Optional[AccuracyReport] = None
    latency: Optional[LatencySummary] = None
    gates: list[GateResult] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


class Report(Strict):
    schema_version: int = SCHEMA_VERSION
    edgekit_version: str
    tools: dict[str, str]
    recipe: dict[str, str]
    model: ModelInfo
    calibration: CalibrationInfo
    preprocessing: Optional[PreprocessingInfo] = None
    fusion: dict[str, FusionInfo] = Field(default_factory=dict, description="per target")
    artifacts: list[ArtifactEntry]
    gates_passed: bool
    gate_failures: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
