"""Standard TFLite model metadata, written with the `flatbuffers` package.

The metadata is a `ModelMetadata` flatbuffer (tflite-support `metadata_schema.fbs`, file identifier
"M001") held in a model `Buffer` that a `Metadata` entry named "TFLITE_METADATA" points at; labels
are `labels.txt` (TENSOR_AXIS_LABELS) in a zip appended to the model, as LiteRT's support
libraries (MetadataExtractor, Task Library) expect. The maintained writer (tflite-support 0.4.4)
needs protobuf<4, which the pinned TensorFlow rules out, so the few tables used are built here.

Written for the contract's input: ImageProperties (RGB/GRAYSCALE; BGR has no enum: UNKNOWN, and
"bgr" is in the description and the JSON), NormalizationOptions = the raw-pixel (mean, std), Stats =
the input's value range for pixels 0..255. Quantized inputs keep the same normalization (the
schema's rule: normalize, then quantize with the input tensor's own scale/zero point) and their
Stats are in quantized units. The whole contract is also JSON custom metadata "edgekit.preprocess".
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from edgekit.errors import ConversionError, MissingDependencyError, ModelError
from edgekit.preprocessing.contract import (PREPROCESS_KEY, InputContract, check_input_shape, check_labels,
                                              resolve_tensor, rewrite)

METADATA_NAME = "TFLITE_METADATA"
LABELS_FILE = "labels.txt"
MIN_PARSER_VERSION = "1.5.0"   # SubGraphMetadata.custom_metadata was added in schema 1.5.0
MAX_FLATBUFFER = 2**31 - 2**20  # the flatbuffer object API cannot write 2 GiB
# Enum values of metadata_schema.fbs.
_COLOR_SPACE = {"rgb": 1, "grayscale": 2, "bgr": 0}                # ColorSpaceType
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2                      # ContentProperties union
_NORMALIZATION_OPTIONS = 1                                         # ProcessUnitOptions union
_TENSOR_AXIS_LABELS = 2                                            # AssociatedFileType
# TFLite TensorType -> integer range of quantized inputs.
_INT_RANGES = {3: ("uint8", 0, 255), 9: ("int8", -128, 127), 7: ("int16", -32768, 32767)}


def _tflite_tools():
    """(flatbuffer_utils, schema) of ai-edge-litert, else of TensorFlow."""
    try:
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.tools import flatbuffer_utils
    except ImportError:
        try:
            from tensorflow.lite.python import schema_py_generated as schema
            from tensorflow.lite.tools import flatbuffer_utils
        except ImportError:
            raise MissingDependencyError("embedding TFLite metadata needs ai-edge-litert or TensorFlow: "
                                         "pip install 'edgekit[tflite]'") from None
    return flatbuffer_utils, schema


def _builder_class():
    import flatbuffers

    class Builder(flatbuffers.Builder):
        """Byte vectors 16-aligned: the schemas' force_align on Buffer.data and CustomMetadata.data,
        which the generated Python code leaves out."""

        def StartVector(self, elemSize, numElems, alignment):  # noqa: N802 (flatbuffers' name)
            return super().StartVector(elemSize, numElems, 16 if elemSize == 1 else alignment)

    return Builder


# --- the ModelMetadata flatbuffer ---------------------------------------------------------------

def _table(b, n_slots: int, refs: dict | None = None, small: dict | None = None) -> int:
    """A table from already-built offsets (`refs`, slot -> offset) and byte enums (`small`)."""
    b.StartObject(n_slots)
    for slot, ref in (refs or {}).items():
        if ref is not None:
            b.PrependUOffsetTRelativeSlot(slot, ref, 0)
    for slot, value in (small or {}).items():
        b.PrependUint8Slot(slot, value, 0)
    return b.EndObject()


def _refs(b, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for ref in reversed(offsets):
        b.PrependUOffsetTRelative(ref)
    return b.EndVector()


def _floats(b, values) -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype=np.float32))


def _image_tensor(b, name: str, info: dict) -> int:
    """TensorMetadata of the image input: ImageProperties, NormalizationOptions, Stats."""
    options = _table(b, 2, {0: _floats(b, info["mean"]), 1: _floats(b, info["std"])})
    unit = _table(b, 2, {1: options}, {0: _NORMALIZATION_OPTIONS})
    image = _table(b, 2, small={0: _COLOR_SPACE[info["color"]]})
    content = _table(b, 3, {1: image}, {0: _IMAGE_PROPERTIES})
    stats = _table(b, 2, {0: _floats(b, [info["range"][1]]), 1: _floats(b, [info["range"][0]])})
    dims = _refs(b, [b.CreateString(d) for d in info["dims"]]) if info["dims"] else None
    return _table(b, 7, {0: b.CreateString(name), 1: b.CreateString(info["description"]), 2: dims,
                         3: content, 4: _refs(b, [unit]), 5: stats})


def _labelled_tensor(b, name: str) -> int:
    """TensorMetadata of the scores output: FeatureProperties and labels.txt."""
    labels = _table(b, 5, {0: b.CreateString(LABELS_FILE),
                           1: b.CreateString("class names, one per line, in score order")},
                    {2: _TENSOR_AXIS_LABELS})
    content = _table(b, 3, {1: _table(b, 0)}, {0: _FEATURE_PROPERTIES})
    return _table(b, 7, {0: b.CreateString(name), 3: content, 6: _refs(b, [labels])})


def metadata_flatbuffer(model_name: str, description: str, inputs: list[str], outputs: list[str],
                        image: tuple[int, dict], labelled: int | None, custom: bytes) -> bytes:
    """ModelMetadata with one TensorMetadata per subgraph input and output, in their order."""
    b = _builder_class()(1024)
    image_index, info = image
    ins = [_image_tensor(b, n, info) if i == image_index else _table(b, 7, {0: b.CreateString(n)})
           for i, n in enumerate(inputs)]
    outs = [_labelled_tensor(b, n) if i == labelled else _table(b, 7, {0: b.CreateString(n)})
            for i, n in enumerate(outputs)]
    extra = _table(b, 2, {0: b.CreateString(PREPROCESS_KEY), 1: b.CreateNumpyVector(np.frombuffer(custom, np.uint8))})
    subgraph = _table(b, 10, {2: _refs(b, ins), 3: _refs(b, outs), 9: _refs(b, [extra])})
    root = _table(b, 8, {0: b.CreateString(model_name), 1: b.CreateString(description),
                         3: _refs(b, [subgraph]), 4: b.CreateString("edgekit"),
                         7: b.CreateString(MIN_PARSER_VERSION)})
    b.Finish(root, file_identifier=b"M001")
    return bytes(b.Output())


# --- the model ----------------------------------------------------------------------------------

def _read_model(path: Path):
    if not path.is_file():
        raise ModelError("no such TFLite file", path)
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError("not a TFLite flatbuffer (no TFL3 identifier)", path)
    if len(data) > MAX_FLATBUFFER:
        raise ConversionError("cannot embed metadata in a model over 2 GiB (its buffers live outside the "
                              "flatbuffer, which the flatbuffer object API cannot write)", path)
    flatbuffer_utils, schema = _tflite_tools()
    try:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    except Exception as err:  # struct.error, IndexError... on a damaged flatbuffer
        raise ModelError(f"cannot parse the TFLite flatbuffer ({err.__class__.__name__})", path) from None
    return model, schema


def _text(name) -> str:
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name or "")


def _aliases(model, graph, indices: list[int], kind: str) -> list[set[str]]:
    """Each tensor's names: its own, without 'serving_default_' and ':0', and its signature keys."""
    names = []
    for index in indices:
        own = _text(graph.tensors[index].name)
        short = own.removeprefix("serving_default_").split(":")[0]
        names.append({own, short})
    for signature in model.signatureDefs or []:
        for tensor_map in getattr(signature, kind) or []:
            if tensor_map.tensorIndex in indices:
                names[indices.index(tensor_map.tensorIndex)].add(_text(tensor_map.name))
    return names


def _input_info(contract: InputContract, tensor, path: Path) -> dict:
    """The image input's metadata values; quantized inputs: Stats in quantized units."""
    mean, std = contract.raw_pixel_normalization()
    low, high = contract.input_range
    info = {"mean": mean, "std": std, "color": contract.color, "range": (low, high), "quantization": None}
    if tensor.type in _INT_RANGES:
        dtype, qmin, qmax = _INT_RANGES[tensor.type]
        quant = tensor.quantization
        if quant is None or quant.scale is None or not len(quant.scale):
            raise ModelError(f"the {dtype} input has no quantization parameters", path)
        scale = float(np.asarray(quant.scale).reshape(-1)[0])
        zero_point = int(np.asarray(quant.zeroPoint).reshape(-1)[0])
        info["range"] = tuple(float(np.clip(np.round(v / scale) + zero_point, qmin, qmax)) for v in (low, high))
        info["quantization"] = {"dtype": dtype, "scale": scale, "zero_point": zero_point}
    shape = list(tensor.shape) if tensor.shape is not None else []
    info["dims"] = ((["batch", "height", "width", "channels"] if contract.layout == "nhwc"
                     else ["batch", "channels", "height", "width"]) if len(shape) == 4 else [])
    rule = "; then quantize: q = round(x / scale) + zero_point" if info["quantization"] else ""
    info["description"] = (f"{contract.color.upper()} image, {contract.layout.upper()}: "
                           f"x = (pixel - mean) / std with pixels 0..255, mean={_short(mean)}, "
                           f"std={_short(std)}, x in [{low:.6g}, {high:.6g}]{rule}")
    return info


def _short(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


def _set_metadata(model, schema, blob: bytes) -> None:
    """Point a (new) "TFLITE_METADATA" entry at a new buffer holding `blob`; drop an earlier one."""
    entries = []
    for entry in model.metadata or []:
        if _text(entry.name) == METADATA_NAME:
            if entry.buffer:
                model.buffers[entry.buffer].data = None
        else:
            entries.append(entry)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(blob, dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = entries + [entry]


def _pack(model) -> bytes:
    for buffer in model.buffers:  # offset-resolved buffers are bytearray slices
        if buffer.data is not None and not isinstance(buffer.data, np.ndarray):
            buffer.data = np.frombuffer(bytes(buffer.data), dtype=np.uint8)
    b = _builder_class()(1 << 20)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _append_labels(flatbuffer: bytes, labels: list[str]) -> bytes:
    """The model with labels.txt in a zip appended (zipfile's append mode on a non-zip)."""
    stream = io.BytesIO(flatbuffer)
    stream.seek(0, io.SEEK_END)
    with zipfile.ZipFile(stream, "a") as archive:
        archive.writestr(LABELS_FILE, "".join(f"{label}\n" for label in labels))
    return stream.getvalue()


def embed(path: Path, contract: InputContract) -> None:
    """Write the metadata (and labels.txt) into the .tflite at `path`, replacing earlier ones."""
    model, schema = _read_model(path)
    graph = model.subgraphs[0]
    inputs, outputs = list(graph.inputs), list(graph.outputs)
    in_names = [_text(graph.tensors[i].name) for i in inputs]
    out_names = [_text(graph.tensors[i].name) for i in outputs]
    image = resolve_tensor(contract.input_name, in_names, _aliases(model, graph, inputs, "inputs"), "input", path,
                           lenient=True)
    labelled = None
    if contract.labels is not None:
        labelled = resolve_tensor(contract.output_name, out_names, _aliases(model, graph, outputs, "outputs"),
                                  "output", path, lenient=True)
        shape = graph.tensors[outputs[labelled]].shape
        check_labels(contract, int(shape[-1]) if shape is not None and len(shape) else None,
                     out_names[labelled], path)
    tensor = graph.tensors[inputs[image]]
    check_input_shape(contract, [] if tensor.shape is None else [int(d) for d in tensor.shape],
                      in_names[image], path)
    info = _input_info(contract, tensor, path)
    custom = dict(contract.to_dict(), input_quantization=info["quantization"])
    blob = metadata_flatbuffer(path.stem, f"edgekit: input {in_names[image]!r}: {info['description']}",
                               in_names, out_names, (image, info), labelled,
                               json.dumps(custom, sort_keys=True).encode())
    _set_metadata(model, schema, blob)
    data = _pack(model)
    if len(data) > MAX_FLATBUFFER:
        raise ConversionError("cannot embed metadata: the rewritten model is over 2 GiB", path)
    rewrite(path, _append_labels(data, contract.labels) if contract.labels else data)
