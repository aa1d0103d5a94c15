"""What the model itself says about its image input: layout, colour, value range, normalization.

Read, in order: the input's shape (channels: 1 -> grayscale, 3 -> rgb; which axis -> layout), its
dtype (uint8/int8: raw pixels), normalization the graph applies to the input (Keras Rescaling and
Normalization layers, or the constant Mul/Div/Add/Sub chain a SavedModel or ONNX graph starts
with: the model then takes pixels in the range that chain expects), and preprocessing an ONNX
model declares in its metadata_props. Every value found is a `model` value.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Optional

from edgekit.calibration.preprocess import layout_from_shape
from edgekit.preprocessing.chain import RANGES, Chain
from edgekit.runtime.base import TensorSpec

log = logging.getLogger("edgekit")
COLORS = {1: "grayscale", 3: "rgb"}
RAW_DTYPES = {"uint8": 0.0, "int8": -128.0}  # integer image inputs take pixels (+ offset)


@dataclass
class Inferred:
    """Preprocess field -> value the model implies, and one line of evidence per finding."""

    values: dict[str, Any] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    inside_model: Optional[str] = None  # "Rescaling(scale=0.00392, offset=0)" when the graph normalizes


def infer_from_model(source) -> Inferred:
    """Inspect a PreparedSource's single 4-D input (anything else: nothing inferred)."""
    found = Inferred()
    if len(source.inputs) != 1 or len(source.inputs[0].shape) != 4:
        return found
    spec: TensorSpec = source.inputs[0]
    implied = layout_from_shape(spec.shape)
    if implied is None:
        return found
    layout, channels = implied
    found.values["layout"] = layout
    found.evidence.append(f"input '{spec.name}' {list(spec.shape)}: {channels} channel(s) on the "
                          f"{'last' if layout == 'nhwc' else 'second'} axis -> {layout}")
    if channels in COLORS:
        found.values["color"] = COLORS[channels]
    if spec.dtype in RAW_DTYPES:
        found.values.update(scale=1.0, offset=RAW_DTYPES[spec.dtype])
        found.evidence.append(f"input dtype {spec.dtype}: takes raw pixels")
        return found
    _from_metadata(source, found)
    if "scale" not in found.values and channels in COLORS:
        chain = _graph_chain(source, spec.name, channels)
        if chain.found:
            name = chain.input_range()
            scale, offset = RANGES[name]
            found.values.update(scale=scale, offset=offset)
            found.inside_model = chain.describe()
            found.evidence.append(f"normalization is inside the model: {found.inside_model}; it expects "
                                  f"{_range_text(scale, offset)} inputs")
    return found


def _range_text(scale: float, offset: float) -> str:
    return f"[{offset:g}, {255 * scale + offset:g}]"


def _graph_chain(source, name: str, channels: int) -> Chain:
    from edgekit.preprocessing.graphs import onnx_chain, tensorflow_chain

    try:
        if source.saved_dir is not None:
            return tensorflow_chain(source.saved_dir, name, channels)
        from edgekit.onnx.load import load_onnx

        return onnx_chain(load_onnx(source.onnx_path), name, channels)
    except Exception as err:  # inference is advisory: a graph it cannot read infers nothing
        log.debug("preprocessing: cannot read the input chain (%s)", err)
        return Chain()


METADATA_KEYS = {"scale": float, "offset": float, "mean": list, "std": list, "color": str, "layout": str}


def _from_metadata(source, found: Inferred) -> None:
    """ONNX metadata_props: edgekit's own `edgekit.preprocess` JSON (what an edgekit artifact carries)."""
    if source.onnx_path is None:
        return
    try:
        import onnx

        props = {p.key: p.value for p in onnx.load(str(source.onnx_path), load_external_data=False).metadata_props}
        declared = json.loads(props.get("edgekit.preprocess", "{}"))
    except Exception:  # malformed metadata says nothing
        return
    if not isinstance(declared, dict):
        return
    taken = {k: v for k, v in declared.items() if k in METADATA_KEYS and isinstance(v, (int, float, str, list))
             and (METADATA_KEYS[k] is not float or isinstance(v, (int, float)))}
    if taken:
        found.values.update(taken)
        found.evidence.append(f"ONNX metadata_props edgekit.preprocess declares {sorted(taken)}")
