"""Safe loading of untrusted ONNX files, opset upgrade, and fixing dynamic input dims.

`load_onnx` checks size and structure, confines external-data tensors to the model's directory
(relative paths only, no `..`, no symlinks or hard links), then runs `onnx.checker`.
`upgrade_opset` raises the default-domain opset to at least 13 (needed for per-channel QDQ).
`pin_input_shapes` pins dynamic input dims.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Mapping, Sequence

from edgekit.errors import ConversionError, ModelError, UsageError, condense

MAX_MODEL_BYTES = 2**31 - 1  # protobuf's hard limit for one message
MIN_OPSET = 7  # the oldest opset onnx's version converter handles reliably
QUANT_MIN_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear (axis) need opset 13


def default_opset(model) -> int:
    """The model's opset for the default ('' or 'ai.onnx') domain."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ModelError("model imports no default-domain opset")


def load_onnx(path: str | Path, *, check: bool = True):
    """Load an ONNX model with its external data, rejecting corrupt or unsafe files (ModelError)."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    try:
        info = path.stat()
    except OSError as err:
        raise ModelError(f"cannot read model ({err.strerror})", path) from None
    if not stat.S_ISREG(info.st_mode):
        raise ModelError("not a regular file", path)
    if info.st_size == 0:
        raise ModelError("empty file, not an ONNX model", path)
    if info.st_size > MAX_MODEL_BYTES:
        raise ModelError(f"{info.st_size} bytes exceeds protobuf's 2 GiB limit", path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError) as err:
        raise ModelError(f"not a valid ONNX model, truncated or corrupt ({condense(err)})", path) from None
    if not model.graph.node and not model.graph.output:
        raise ModelError("not an ONNX model (no graph: wrong or truncated file?)", path)
    _load_external_data(model, path.parent)
    opset = default_opset(model)
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ModelError(f"unsupported opset {opset} (supported: {MIN_OPSET}..{newest})", path)
    if check:
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as err:
            raise ModelError(f"fails onnx.checker: {condense(err)}", path) from None
    return model


def _external_tensors(model):
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    return [t for t in _get_all_tensors(model) if uses_external_data(t)]


def confined_external_path(base_dir: Path, location: str) -> Path:
    """The file `location` names inside `base_dir`; ModelError if it could escape that directory."""
    if not location or "\x00" in location:
        raise ModelError("external data with an empty or invalid location", base_dir)
    parts = Path(location.replace("\\", "/")).parts
    if os.path.isabs(location) or location.startswith(("/", "\\")) or (parts and ":" in parts[0]):
        raise ModelError("external data uses an absolute path (refused)", location)
    if ".." in parts:
        raise ModelError("external data path climbs out of the model directory (refused)", location)
    base = base_dir.resolve()
    candidate = base
    for part in parts:
        candidate = candidate / part
        if candidate.is_symlink():
            raise ModelError("external data path is a symlink (refused)", candidate)
    try:
        info = candidate.lstat()
    except OSError as err:
        raise ModelError(f"external data file missing ({err.strerror})", candidate) from None
    if not stat.S_ISREG(info.st_mode):
        raise ModelError("external data is not a regular file (refused)", candidate)
    if info.st_nlink > 1:
        raise ModelError("external data file has other hard links (refused)", candidate)
    if base not in candidate.resolve().parents:
        raise ModelError("external data resolves outside the model directory (refused)", candidate)
    return candidate


def _load_external_data(model, base_dir: Path) -> None:
    """Read every external tensor after confining its path and checking offset/length bounds."""
    from onnx.external_data_helper import ExternalDataInfo

    for tensor in _external_tensors(model):
        info = ExternalDataInfo(tensor)
        path = confined_external_path(base_dir, info.location)
        size = path.stat().st_size
        offset = int(info.offset or 0)
        length = int(info.length) if info.length else size - offset
        if offset < 0 or length < 0 or offset + length > size:
            raise ModelError(f"external data for {tensor.name!r} lies past the end of the file", path)
        with open(path, "rb") as handle:
            handle.seek(offset)
            tensor.raw_data = handle.read(length)
        del tensor.external_data[:]
        tensor.data_location = 0  # TensorProto.DEFAULT


def upgrade_opset(model, target: int = QUANT_MIN_OPSET):
    """Return (model, record): the model converted to `target` when its opset is lower.

    The record is {"from": old, "to": new} (equal when nothing was done). Conversion failures
    raise ConversionError naming the opsets.
    """
    import onnx
    from onnx import version_converter

    old = default_opset(model)
    if old >= target:
        return model, {"from": old, "to": old}
    try:
        converted = version_converter.convert_version(model, target)
        onnx.checker.check_model(converted)
    except Exception as err:  # the converter raises bare RuntimeError/ValidationError
        raise ConversionError(f"cannot upgrade opset {old} -> {target}: {condense(err)}") from None
    return converted, {"from": old, "to": target}


def _static(dim) -> bool:
    """A known size: exporters write unknown dims as a name, nothing, 0 or -1 (paddle2onnx)."""
    return dim.HasField("dim_value") and dim.dim_value > 0


def input_specs(model) -> dict[str, list[int | str]]:
    """Real graph inputs (initializers excluded) -> dims (int, or the symbolic name / '?')."""
    inits = {init.name for init in model.graph.initializer}
    specs = {}
    for value in model.graph.input:
        if value.name in inits:
            continue
        dims = value.type.tensor_type.shape.dim
        specs[value.name] = [d.dim_value if _static(d) else (d.dim_param or "?") for d in dims]
    return specs


def known_dims(specs: Mapping[str, Sequence[int | str]]) -> dict[str, list[int | None]]:
    """`input_specs` with every unknown dim as None."""
    return {name: [d if isinstance(d, int) and d > 0 else None for d in dims] for name, dims in specs.items()}


def pin_input_shapes(model, shapes: Mapping[str, Sequence[int]] | None = None, *, batch: int = 1):
    """Pin dynamic input dims; return (model, record).

    `shapes` maps input name -> full shape; inputs not named get their unknown batch set to
    `batch` (default 1): axis 0, or another axis as `batch_axes` finds it (the record's
    "batch_axes"). Inputs whose other dims stay dynamic raise UsageError naming them. Then shape
    inference runs (`edgekit.backends.onnx.shapes.fix_input_shapes` then folds the shape
    subgraphs that became constant).
    """
    import onnx

    from edgekit.calibration.shape_hint import batch_axes

    shapes = dict(shapes or {})
    specs = input_specs(model)
    axes = batch_axes(known_dims(specs))
    unknown = sorted(set(shapes) - set(specs))
    if unknown:
        raise UsageError(f"--input-shape names {unknown}, but the model's inputs are {sorted(specs)}")
    model = _copy(model)
    changed = {}
    for value in model.graph.input:
        if value.name not in specs:
            continue
        dims = value.type.tensor_type.shape.dim
        want = shapes.get(value.name)
        if want is not None:
            want = [int(d) for d in want]
            if len(want) != len(dims):
                raise UsageError(f"input {value.name!r} has rank {len(dims)}, --input-shape gives {want}")
            for dim, size in zip(dims, want):
                if _static(dim) and dim.dim_value != size:
                    raise UsageError(f"input {value.name!r} is fixed at {specs[value.name]}, not {want}")
        else:
            want = [d.dim_value if _static(d) else None for d in dims]
            if value.name in axes:
                want[axes[value.name]] = batch
            missing = [i for i, d in enumerate(want) if d is None]
            if missing:
                raise UsageError(
                    f"input {value.name!r} has dynamic dims {missing} ({specs[value.name]}): "
                    "give its shape with --input-shape"
                )
        if not all(_static(d) for d in dims):
            changed[value.name] = want
        for dim, size in zip(dims, want):
            dim.Clear()
            dim.dim_value = int(size)
    if not changed:
        return model, {"fixed_inputs": {}, "batch_axes": {}}
    del model.graph.value_info[:]
    for out in model.graph.output:  # let inference recompute unknown output dims; the rank stays
        for dim in out.type.tensor_type.shape.dim:
            if not _static(dim):
                dim.Clear()
    model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    batch_at = {name: axes[name] for name in changed if name in axes and name not in shapes}
    return model, {"fixed_inputs": changed, "batch_axes": batch_at}


def _copy(model):
    import onnx

    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    return clone
