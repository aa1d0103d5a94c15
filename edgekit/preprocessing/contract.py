"""The preprocessing contract every artifact ships, so app code cannot drift from calibration.

Each backend embeds it in its own format (`Target.embed_contract`): standard TFLite metadata in a
.tflite, `metadata_props` in an .onnx. Both rewrite the file atomically.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from edgekit.calibration.preprocess import CHANNELS
from edgekit.errors import ModelError, OutputError
from edgekit.fsutil import write_bytes_atomic
from edgekit.recipe.schema import Preprocess

FORMAT_VERSION = 1
PREFIX = "edgekit."
PREPROCESS_KEY = PREFIX + "preprocess"
COLORS = CHANNELS  # colour -> channels
LAYOUTS = ("nhwc", "nchw")


@dataclass(frozen=True)
class InputContract:
    """What app code must feed: from the resolved preprocessing (values as calibrated)."""

    input_name: str
    scale: float
    offset: float                      # x * scale + offset ...
    mean: Optional[list[float]]
    std: Optional[list[float]]         # ... then (. - mean) / std
    color: str                         # "rgb" | "bgr" | "grayscale"
    layout: str                        # "nhwc" | "nchw"
    input_range: tuple[float, float]   # the model input's value range for pixels 0..255
    labels: Optional[list[str]]        # class names (or None)
    output_name: Optional[str]         # the output the labels belong to (None: first output)

    def __post_init__(self):
        if self.color not in COLORS:
            raise ValueError(f"color must be one of {sorted(COLORS)}, not {self.color!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {list(LAYOUTS)}, not {self.layout!r}")
        if not math.isfinite(self.scale) or self.scale == 0 or not math.isfinite(self.offset):
            raise ValueError(f"scale must be finite and non-zero, offset finite (got {self.scale}, {self.offset})")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values is not None and (len(values) not in (1, COLORS[self.color])
                                       or not all(math.isfinite(v) for v in values)):
                raise ValueError(f"{name} needs 1 or {COLORS[self.color]} finite values for {self.color}, "
                                 f"not {values}")
        if self.std is not None and any(v == 0 for v in self.std):
            raise ValueError(f"std has a zero: {self.std}")
        if len(self.input_range) != 2 or not self.input_range[0] <= self.input_range[1]:
            raise ValueError(f"input_range must be (low, high), not {self.input_range}")
        if self.labels is not None and any(not label or "\n" in label or "\r" in label
                                           for label in self.labels):
            raise ValueError("labels must be non-empty single lines")

    def raw_pixel_normalization(self) -> tuple[list[float], list[float]]:
        """(mean, std) such that (pixel - mean) / std == what was calibrated (TFLite's convention, pixels 0..255)."""
        mean = list(self.mean) if self.mean is not None else [0.0]
        std = list(self.std) if self.std is not None else [1.0]
        n = max(len(mean), len(std))
        mean, std = mean * (n // len(mean)), std * (n // len(std))
        return ([(m - self.offset) / self.scale for m in mean], [s / self.scale for s in std])

    def to_dict(self) -> dict:
        """JSON-ready: the fields, plus format and the raw-pixel (pixel_mean, pixel_std)."""
        data = asdict(self)
        data["input_range"] = list(self.input_range)
        data["pixel_mean"], data["pixel_std"] = self.raw_pixel_normalization()
        data["format"] = FORMAT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "InputContract":
        """The contract of a `to_dict()` (extra keys ignored)."""
        fields = {k: data[k] for k in cls.__dataclass_fields__}
        fields["input_range"] = tuple(fields["input_range"])
        return cls(**fields)


def resolve_tensor(wanted: Optional[str], names: list[str], aliases: list[set[str]], what: str,
                   path: Path, lenient: bool = False) -> int:
    """Index of the tensor `wanted` names (one of its aliases); None: the first.

    lenient (TFLite, whose converter renames tensors): an unmatched name on a single tensor is it.
    """
    if wanted is not None:
        for index, alias in enumerate(aliases):
            if wanted in alias:
                return index
    if names and (wanted is None or (lenient and len(names) == 1)):
        return 0
    raise ModelError(f"the model has no {what} named {wanted!r} (it has {names})", path)


def check_input_shape(contract: InputContract, shape: list, name: str, path: Path) -> None:
    """Refuse a 4-D input whose (static) channel axis, by the contract's layout, does not fit its color."""
    if len(shape) != 4:
        return
    channels = shape[3] if contract.layout == "nhwc" else shape[1]
    if channels and channels > 0 and channels != COLORS[contract.color]:
        raise ModelError(f"input {name!r} of shape {list(shape)} has {channels} channels in {contract.layout}, "
                         f"not the {COLORS[contract.color]} of {contract.color}", path)


def check_labels(contract: InputContract, last_dim: Optional[int], output: str, path: Path) -> None:
    """Refuse labels whose count differs from the output's (static) last dimension."""
    if contract.labels is not None and last_dim is not None and last_dim > 0 \
            and last_dim != len(contract.labels):
        raise ModelError(f"{len(contract.labels)} labels but output {output!r} has {last_dim} classes", path)


def rewrite(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically; OutputError when the directory is not writable."""
    try:
        write_bytes_atomic(path, data)
    except OSError as err:
        raise OutputError(f"cannot rewrite with metadata ({err.strerror})", path) from None


def input_range(pp: Preprocess) -> tuple[float, float]:
    """The model input's value range for pixels 0..255 under `pp`."""
    ends = np.array([0.0, 255.0]) * pp.scale + pp.offset
    if pp.mean is not None:
        mean, std = np.asarray(pp.mean)[:, None], np.asarray(pp.std)[:, None]
        ends = (ends[None, :] - mean) / std
    return float(np.min(ends)), float(np.max(ends))
