"""The recipe schema: every pipeline option, typed, with unknown keys rejected.

Defaults live here and nowhere else; the resolved recipe is saved beside the artifacts.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Precision = Literal["fp32", "fp16", "dynamic", "int8"]
# A registered target name (edgekit.backends: tflite, onnx, tensorrt, or one registered at run time);
# the pipeline refuses an unknown one with the list of known names.
Target = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False, strict=False)


class Preprocess(Strict):
    """How an image becomes a model input. Default: no resize, x/255, RGB, NHWC, float32."""

    resize: Optional[tuple[int, int]] = Field(
        None, description="[height, width] to resize to; null = images must already match"
    )
    resize_method: Literal["bilinear", "nearest", "bicubic"] = "bilinear"
    scale: float = Field(1 / 255, description="x * scale + offset, applied before mean/std")
    offset: float = 0.0
    mean: Optional[list[float]] = Field(None, description="per-channel mean subtracted after scale")
    std: Optional[list[float]] = Field(None, description="per-channel std divided after mean")
    color: Literal["rgb", "bgr", "grayscale"] = "rgb"
    layout: Literal["nhwc", "nchw"] = "nhwc"

    @model_validator(mode="after")
    def _mean_std_pair(self):
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std must be given together")
        if self.std is not None and any(s == 0 for s in self.std):
            raise ValueError("std values must be non-zero")
        if self.mean is not None and len(self.mean) != len(self.std):
            raise ValueError("mean and std must have the same length")
        return self


class Calibration(Strict):
    """Where calibration/validation samples come from and how they are split (default 300/20%)."""

    source: Optional[str] = Field(None, description="directory of images or .npy/.npz files")
    num_samples: int = Field(300, ge=1, description="calibration samples (all there are if fewer)")
    validation_fraction: float = Field(0.2, gt=0, lt=1, description="share held out for validation")
    max_validation_samples: int = Field(500, ge=1)
    labels: Optional[str] = Field(None, description="labels CSV (default: labels.csv in source)")
    method: Literal["minmax", "entropy", "percentile", "auto"] = Field(
        "minmax", description="ONNX calibrator; auto tries each on the validation split (TFLite: min/max)")


class Int8(Strict):
    """Full-integer quantization options. Default: int8 internals, float inputs/outputs, equalize and smooth auto."""

    io_dtype: Literal["float32", "int8", "uint8"] = "float32"
    per_channel: bool = True
    equalize: Literal["auto", "on", "off"] = Field(
        "auto", description="cross-layer equalization of the float model before INT8: auto = only pairs "
                            "where a channel's scale is > 2x off the median (measured best)")
    smooth: Literal["auto", "on", "off"] = Field(
        "auto", description="ONNX: move per-channel activation outliers into the weights of the conv/matmul "
                            "reading them (SmoothQuant, folded into the float graph, strength measured on "
                            "calibration samples); auto = only where it cuts their INT8 error 1.5x")
    bias_correction: Literal["auto", "on", "off"] = Field(
        "off", description="fold the per-channel mean shift INT8 causes (measured on calibration samples) "
                           "into the biases; auto keeps it where the held-out samples score better")
    channel_groups: bool = Field(
        True, description="ONNX precision ladder: a conv/matmul may be split by input channel groups, each "
                          "with its own INT8 activation scale (still W8A8, where that cuts the INT8 noise "
                          ">= 2x); onnxruntime's CPU runs them through float kernels (slower on the host)")
    weight_rounding: Literal["auto", "gptq", "nearest"] = Field(
        "auto", description="ONNX INT8 weight rounding: gptq rounds each conv/matmul's weights to move "
                            "its output least on the calibration samples (same scales); auto = the "
                            "precision ladder builds on gptq, the plain INT8 build rounds to nearest")


class Validation(Strict):
    """Host validation. Default: 1 thread, 10 warm-up and 50 timed runs."""

    threads: int = Field(1, ge=1, le=64)
    warmup_runs: int = Field(10, ge=0, le=100_000)
    runs: int = Field(50, ge=1, le=100_000)


class Gates(Strict):
    """Build gates; any missed gate exits 10 after the report is written.

    The accuracy gates read the primary output (see `outputs:`). collapse_guard (default on)
    fails an INT8/FP16 artifact whose primary output collapsed: top-1 agreement < 0.5 (or label
    accuracy < half of float's), sequence match < 0.5, box F1 < 0.5, or a channel group's SQNR < 3 dB.
    """

    max_accuracy_drop: Optional[float] = Field(None, ge=0, description="points (0-100)")
    min_agreement: Optional[float] = Field(None, ge=0, le=1, description="top-1 agreement")
    max_size_bytes: Optional[int] = Field(None, ge=1)
    max_latency_ms: Optional[float] = Field(None, gt=0, description="host p50")
    min_sqnr_db: Optional[float] = Field(None, description="output SQNR vs the float model")
    min_sequence_match: Optional[float] = Field(None, ge=0, le=1, description="decoded sequences equal to float's")
    min_map_iou: Optional[float] = Field(None, ge=0, le=1, description="IoU of the thresholded maps vs float")
    min_box_f1: Optional[float] = Field(None, ge=0, le=1, description="detection F1 vs float's detections")
    collapse_guard: bool = Field(True, description="fail a collapsed INT8/FP16 artifact (exit 10)")


class OutputSpec(Strict):
    """One output's role; any field left out is inferred from the float model's outputs.

    role: scores | sequence | map | boxes | regression | state; primary: this output carries the
    headline and the gates; class_axis: the class axis (scores, sequence) or the rows' axis
    (boxes). sequence: blank_index (default: the most frequent float class), alphabet (the
    non-blank classes' characters, in order). boxes: box_rows (leading coordinate rows, default:
    split by value range), box_format, score_threshold 0.25, nms_iou 0.45. map: map_threshold 0.5.
    """

    role: Optional[Literal["scores", "sequence", "map", "boxes", "regression", "state"]] = None
    primary: bool = False
    class_axis: Optional[int] = None
    blank_index: Optional[int] = Field(None, ge=0)
    alphabet: Optional[str] = None
    box_rows: Optional[int] = Field(None, ge=1)
    box_format: Optional[Literal["cxcywh", "xyxy"]] = None
    score_threshold: Optional[float] = Field(None, ge=0)
    nms_iou: Optional[float] = Field(None, gt=0, le=1)
    map_threshold: Optional[float] = None


class Fallback(Strict):
    """Keep the most sensitive layers in float when INT8 misses an accuracy gate. Default: on, <= 10
    layers, the choice confirmed on half the held-out samples."""

    enabled: bool = True
    max_float_layers: int = Field(10, ge=1, le=1000)
    time_budget_s: float = Field(600, gt=0)
    confirm_fraction: float = Field(0.5, ge=0, lt=1, description=(
        "share of the held-out samples the search never sees; its choice must meet the budget on them "
        "too (0: off; needs 20 samples on each side)"))


class Tolerance(Strict):
    """PASS when |test - ref| <= atol + rtol * |ref| element-wise. Default: atol 1e-4, rtol 1e-3."""

    atol: float = Field(1e-4, ge=0)
    rtol: float = Field(1e-3, ge=0)


class CompareSpec(Tolerance):
    """Tolerances of `edgekit compare`: global, and per output name."""

    outputs: dict[str, Tolerance] = Field(default_factory=dict)


class Recipe(Strict):
    """A pipeline config. Default: FP32 only (ask for more precisions), target by model format."""

    name: str = "custom"
    description: str = ""
    targets: Optional[list[Target]] = Field(
        None, description="default: tflite for TensorFlow models, onnx for ONNX models")
    precisions: list[Precision] = Field(default_factory=lambda: ["fp32"])
    class_names: Optional[list[str]] = Field(None, description="label names for app code (model.json)")
    input_shapes: dict[str, list[int]] = Field(
        default_factory=dict, description="fixed shape per input; unknown dims default to 1"
    )
    preprocess: Preprocess = Field(default_factory=Preprocess)
    calibration: Calibration = Field(default_factory=Calibration)
    int8: Int8 = Field(default_factory=Int8)
    validation: Validation = Field(default_factory=Validation)
    gates: Gates = Field(default_factory=Gates)
    outputs: dict[str, OutputSpec] = Field(default_factory=dict, description="role per output name")
    fallback: Fallback = Field(default_factory=Fallback)
    compare: CompareSpec = Field(default_factory=CompareSpec)

    @model_validator(mode="after")
    def _normalize(self):
        order = ["fp32", "fp16", "dynamic", "int8"]
        wanted = set(self.precisions) | {"fp32"}
        object.__setattr__(self, "precisions", [p for p in order if p in wanted])
        if self.targets is not None:
            object.__setattr__(self, "targets", list(dict.fromkeys(self.targets)))
        primaries = [name for name, spec in self.outputs.items() if spec.primary]
        if len(primaries) > 1:
            raise ValueError(f"outputs: only one output can be primary, got {primaries}")
        for name, shape in self.input_shapes.items():
            if not shape or any(d < 1 for d in shape):
                raise ValueError(f"input_shapes.{name}: every dimension must be >= 1")
        return self
