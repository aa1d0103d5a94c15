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


# keras.applications models that do not carry their preprocessing as layers, by model name prefix
# (their `preprocess_input` mode); checked in this order (resnet50v2 before resnet50).
KERAS_APPLICATIONS = [
    (("resnet50v2", "resnet101v2", "resnet152v2", "mobilenet_", "mobilenetv2_", "inception_v3",
      "inception_resnet_v2", "xception", "nasnet"), "tf", {"scale": 2 / 255, "offset": -1.0}),
    (("resnet50", "resnet101", "resnet152", "vgg16", "vgg19"), "caffe",
     {"scale": 1.0, "offset": 0.0, "mean": [103.939, 116.779, 123.68], "std": [1.0, 1.0, 1.0], "color": "bgr"}),
    (("densenet",), "torch", {"scale": 1 / 255, "offset": 0.0, "mean": [0.485, 0.456, 0.406],
                              "std": [0.229, 0.224, 0.225]}),
]


def infer_from_model(source, model_path=None) -> Inferred:
    """Inspect a PreparedSource's single 4-D input (anything else: nothing inferred); model_path
    (a .keras file) adds keras.applications' conventions by model name."""
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
    onnx_model = _load_onnx(source)
    if onnx_model is not None:
        _from_metadata(onnx_model, found)
    if "scale" not in found.values and channels in COLORS:
        chain = _graph_chain(source, onnx_model, spec.name, channels)
        if chain.found:
            name = chain.input_range()
            scale, offset = RANGES[name]
            found.values.update(scale=scale, offset=offset)
            found.inside_model = chain.describe()
            found.evidence.append(f"normalization is inside the model: {found.inside_model}; it expects "
                                  f"{_range_text(scale, offset)} inputs")
        elif channels == 3 and model_path is not None:
            _from_keras_application(model_path, found)
    return found


def _from_keras_application(path, found: Inferred) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:  # checked (size, members) by model/checks.py
            name = str(json.loads(archive.read("config.json")).get("config", {}).get("name", ""))
    except Exception:  # not a .keras archive: no name to go by
        return
    for prefixes, mode, values in KERAS_APPLICATIONS:
        if name.lower().startswith(prefixes):
            found.values.update(values)
            found.evidence.append(f"Keras model '{name}' is a keras.applications architecture without "
                                  f"preprocessing layers: its preprocess_input mode is '{mode}'")
            return


def _range_text(scale: float, offset: float) -> str:
    return f"[{offset:g}, {255 * scale + offset:g}]"


def _load_onnx(source):
    """The source's ONNX graph, loaded once (None: a TensorFlow source, or unreadable: nothing inferred)."""
    if source.onnx_path is None:
        return None
    from edgekit.sources.onnx_load import load_onnx

    try:
        return load_onnx(source.onnx_path)
    except Exception as err:  # inference is advisory: a graph it cannot read infers nothing
        log.debug("preprocessing: cannot read %s (%s)", source.onnx_path, err)
        return None


def _graph_chain(source, onnx_model, name: str, channels: int) -> Chain:
    from edgekit.preprocessing.graphs import onnx_chain, tensorflow_chain

    try:
        if source.saved_dir is not None:
            return tensorflow_chain(source.saved_dir, name, channels)
        return onnx_chain(onnx_model, name, channels) if onnx_model is not None else Chain()
    except Exception as err:  # inference is advisory: a graph it cannot read infers nothing
        log.debug("preprocessing: cannot read the input chain (%s)", err)
        return Chain()


METADATA_KEYS = {"scale": float, "offset": float, "mean": list, "std": list, "color": str, "layout": str}


def _from_metadata(model, found: Inferred) -> None:
    """ONNX metadata_props: edgekit's own `edgekit.preprocess` JSON (what an edgekit artifact carries);
    only the preprocessing keys of well-typed values are taken, anything malformed says nothing."""
    from edgekit.preprocessing.contract import PREPROCESS_KEY

    try:
        declared = json.loads({p.key: p.value for p in model.metadata_props}.get(PREPROCESS_KEY, "{}"))
    except ValueError:
        return
    if not isinstance(declared, dict):
        return
    taken = {k: v for k, v in declared.items() if k in METADATA_KEYS and isinstance(v, (int, float, str, list))
             and (METADATA_KEYS[k] is not float or isinstance(v, (int, float)))}
    if taken:
        found.values.update(taken)
        found.evidence.append(f"ONNX metadata_props {PREPROCESS_KEY} declares {sorted(taken)}")
