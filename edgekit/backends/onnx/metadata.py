"""ONNX artifacts carry the preprocessing contract in `metadata_props`: keys prefixed "edgekit."
plus the whole contract as JSON in "edgekit.preprocess" (onnxruntime shows them as
`get_modelmeta().custom_metadata_map`). The file is rewritten atomically."""

from __future__ import annotations

import json
from pathlib import Path

from edgekit.errors import MissingDependencyError, ModelError
from edgekit.preprocessing.contract import (PREFIX, PREPROCESS_KEY, InputContract, check_input_shape, check_labels,
                                            resolve_tensor, rewrite)


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
