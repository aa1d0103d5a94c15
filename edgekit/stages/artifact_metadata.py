"""Ship the calibrated preprocessing and the labels inside every artifact, so app code cannot drift.

- `.tflite`: standard TFLite model metadata (tflite-support `metadata_schema.fbs`, the
  "TFLITE_METADATA" entry LiteRT's support libraries read) with the labels as `labels.txt`
  (TENSOR_AXIS_LABELS) in a zip appended to the file; see `tflite_metadata`.
- `.onnx`: `metadata_props` keys prefixed "edgekit." plus the whole contract as JSON in
  "edgekit.preprocess" (onnxruntime shows them as `get_modelmeta().custom_metadata_map`).

Both rewrite the file atomically (a temporary file in the same directory, then a rename).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from edgekit.calibration.preprocess import CHANNELS
from edgekit.errors import MissingDependencyError, ModelError, OutputError
from edgekit.fsutil import write_bytes_atomic

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


def embed_tflite_metadata(path: Path, contract: InputContract) -> None:
    """Embed `contract` as standard TFLite metadata (+ labels.txt); rewrites `path` atomically."""
    from edgekit.stages import tflite_metadata

    tflite_metadata.embed(Path(path), contract)


# --- ONNX ---------------------------------------------------------------------------------------

def _onnx():
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError("onnx is not installed: pip install 'edgekit[onnx]'") from None
    return onnx


def _load_onnx(path: Path):
    """The ModelProto without its external data (kept as references, so saving beside keeps them)."""
    onnx = _onnx()
    if not path.is_file():
        raise ModelError("no such ONNX file", path)
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as err:  # DecodeError, ValueError...
        raise ModelError(f"not a readable ONNX model ({err.__class__.__name__})", path) from None


def _onnx_dims(value) -> list:
    """Static dims of a graph input/output; None where symbolic or unknown."""
    return [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]


def onnx_props(contract: InputContract) -> dict[str, str]:
    """The metadata_props edgekit writes: one key per field app code needs, and the whole as JSON."""
    data = contract.to_dict()
    props = {PREPROCESS_KEY: json.dumps(data, sort_keys=True)}
    for key in ("input_name", "color", "layout", "output_name"):
        if data[key] is not None:
            props[PREFIX + key] = data[key]
    for key in ("pixel_mean", "pixel_std", "input_range", "labels"):
        if data[key] is not None:
            props[PREFIX + key] = json.dumps(data[key])
    return props


def embed_onnx_metadata(path: Path, contract: InputContract) -> None:
    """Write `contract` into the model's metadata_props (replacing earlier "edgekit." keys).

    External data files stay where they are and keep working: the model is loaded without them
    and written back into the same directory, so their relative locations still resolve.
    """
    path = Path(path)
    model = _load_onnx(path)
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [value.name for value in graph.input if value.name not in initializers]
    image = graph.input[[v.name for v in graph.input].index(
        inputs[resolve_tensor(contract.input_name, inputs, [{n} for n in inputs], "input", path)])]
    check_input_shape(contract, _onnx_dims(image), image.name, path)
    outputs = [value.name for value in graph.output]
    out = graph.output[resolve_tensor(contract.output_name, outputs, [{n} for n in outputs], "output", path)]
    dims = _onnx_dims(out)
    check_labels(contract, dims[-1] if dims else None, out.name, path)
    kept = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    for key, value in kept + sorted(onnx_props(contract).items()):
        model.metadata_props.add(key=key, value=value)
    rewrite(path, model.SerializeToString())


def read_onnx_metadata(path: Path) -> dict:
    """The contract dict ("edgekit.preprocess", see InputContract.to_dict) of an ONNX file; {} without one."""
    path = Path(path)
    props = {p.key: p.value for p in _load_onnx(path).metadata_props}
    if PREPROCESS_KEY not in props:
        return {}
    try:
        data = json.loads(props[PREPROCESS_KEY])
        InputContract.from_dict(data)
    except (ValueError, KeyError, TypeError) as err:
        raise ModelError(f"metadata_props {PREPROCESS_KEY!r} is not a valid edgekit contract ({err})", path) from None
    return data
