"""The preprocessing and labels embedded in .tflite (standard TFLite metadata) and .onnx
(metadata_props) read back equal to the contract, and the models still run unchanged.

The TFLite metadata is read with tflite-support's generated schema reader (an independent reader,
installed --no-deps by scripts/setup.sh), the labels with zipfile, the outputs with ai-edge-litert.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from edgekit.errors import ModelError
from edgekit.backends.onnx.metadata import embed_onnx_metadata, read_onnx_metadata
from edgekit.backends.tflite.metadata import embed as embed_tflite_metadata
from edgekit.preprocessing.contract import InputContract

LABELS = ["cat", "dog", "bird"]
IMAGENET = InputContract("image", 1 / 255, 0.0, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], "rgb", "nhwc",
                         (-2.1179, 2.64), LABELS, None)


def _reader():
    try:
        from tensorflow_lite_support.metadata import metadata_schema_py_generated as md
        from tensorflow_lite_support.metadata import schema_py_generated as model_schema
    except ImportError as err:
        pytest.skip(f"tflite-support's generated metadata reader is not installed ({err}): "
                    "pip install --no-deps tflite-support==0.4.4")
    return md, model_schema


def read_tflite_metadata(path):
    """(ModelMetadataT, [metadata entry names]) read with tflite-support's generated schema."""
    md, model_schema = _reader()
    data = path.read_bytes()
    model = model_schema.Model.GetRootAs(data, 0)
    names = [model.Metadata(i).Name().decode() for i in range(model.MetadataLength())]
    entry = model.Metadata(names.index("TFLITE_METADATA"))
    blob = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    assert md.ModelMetadata.ModelMetadataBufferHasIdentifier(blob, 0)
    return md.ModelMetadataT.InitFromObj(md.ModelMetadata.GetRootAs(blob, 0)), names


@pytest.fixture(scope="module")
def tflite_models(tmp_path_factory):
    """{"float", "int8", "offsets"} -> .tflite of a tiny conv classifier (8x8x3 -> 3 classes)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((8, 8, 3), name="image")
    x = tf.keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(3, activation="softmax", name="scores")(x))
    folder = tmp_path_factory.mktemp("tflite")
    paths = {"float": folder / "model_fp32.tflite", "int8": folder / "model_int8.tflite"}
    paths["float"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.uniform(-2.1, 2.6, (1, 8, 8, 3)).astype(np.float32)]
                                                for _ in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    paths["int8"].write_bytes(converter.convert())
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter._experimental_use_buffer_offset = True  # what the converter does for models over 2 GiB
    paths["offsets"] = folder / "model_offsets.tflite"
    paths["offsets"].write_bytes(converter.convert())
    return paths


def _run_tflite(path, seed=1):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(path))
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    rng = np.random.default_rng(seed)
    if detail["dtype"] == np.float32:
        sample = rng.uniform(-2, 2, detail["shape"]).astype(np.float32)
    else:
        sample = rng.integers(-128, 128, detail["shape"]).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], sample)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), detail


def _copy(src, tmp_path):
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    return dst


def test_raw_pixel_normalization_reproduces_the_calibrated_transform():
    pixels = np.arange(256, dtype=np.float64)[:, None]
    for contract in (IMAGENET, InputContract("x", 1 / 127.5, -1.0, None, None, "rgb", "nhwc", (-1, 1), None, None),
                     InputContract("x", 2.0, 3.0, [1.0], None, "grayscale", "nchw", (-1, 1), None, None)):
        mean, std = contract.raw_pixel_normalization()
        calibrated = (pixels * contract.scale + contract.offset - np.asarray(contract.mean or [0.0])) \
            / np.asarray(contract.std or [1.0])
        np.testing.assert_allclose((pixels - np.asarray(mean)) / np.asarray(std), calibrated, rtol=1e-12, atol=1e-12)
    assert InputContract("x", 1 / 127.5, -1.0, None, None, "rgb", "nhwc", (-1, 1), None, None) \
        .raw_pixel_normalization() == ([127.5], [127.5])
    with pytest.raises(ValueError, match="color"):
        InputContract("x", 1.0, 0.0, None, None, "yuv", "nhwc", (0, 255), None, None)
    with pytest.raises(ValueError, match="mean"):
        InputContract("x", 1.0, 0.0, [1.0, 2.0], None, "rgb", "nhwc", (0, 255), None, None)


@pytest.mark.parametrize("color, enum", [("rgb", 1), ("bgr", 0)])
def test_tflite_float_metadata_reads_back_and_the_model_runs_unchanged(tflite_models, tmp_path, color, enum):
    path = _copy(tflite_models["float"], tmp_path)
    before, _ = _run_tflite(path)
    contract = replace(IMAGENET, color=color)
    embed_tflite_metadata(path, contract)

    meta, entries = read_tflite_metadata(path)
    assert entries.count("TFLITE_METADATA") == 1 and "min_runtime_version" in entries
    assert meta.minParserVersion == b"1.5.0"
    subgraph = meta.subgraphMetadata[0]
    assert len(subgraph.inputTensorMetadata) == 1 and len(subgraph.outputTensorMetadata) == 1
    tensor = subgraph.inputTensorMetadata[0]
    mean, std = contract.raw_pixel_normalization()
    norm = tensor.processUnits[0].options
    np.testing.assert_array_equal(norm.mean, np.float32(mean))
    np.testing.assert_array_equal(norm.std, np.float32(std))
    assert tensor.content.contentProperties.colorSpace == enum
    np.testing.assert_array_equal(tensor.stats.min, np.float32([contract.input_range[0]]))
    np.testing.assert_array_equal(tensor.stats.max, np.float32([contract.input_range[1]]))
    assert tensor.dimensionNames == [b"batch", b"height", b"width", b"channels"]
    assert color.upper().encode() in meta.description
    labels = subgraph.outputTensorMetadata[0].associatedFiles[0]
    assert (labels.name, labels.type) == (b"labels.txt", 2)  # TENSOR_AXIS_LABELS
    assert zipfile.ZipFile(path).read("labels.txt").decode().splitlines() == LABELS
    custom = subgraph.customMetadata[0]
    assert custom.name == b"edgekit.preprocess"
    assert json.loads(bytes(custom.data)) == dict(contract.to_dict(), input_quantization=None)
    assert InputContract.from_dict(json.loads(bytes(custom.data))) == contract

    after, _ = _run_tflite(path)
    np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_tflite_supports_metadata_displayer_reads_it(tflite_models, tmp_path, kind):
    """tflite-support's own tools: its displayer (native flatbuffer parser + schema) and its
    minimum-parser-version computation agree with what was written."""
    _reader()
    try:
        from tensorflow_lite_support.metadata.cc.python import _pywrap_metadata_version
        from tensorflow_lite_support.metadata.python import metadata as support
    except ImportError as err:  # its native part links libusb (scripts/install_system_deps.sh)
        pytest.skip(f"tflite-support's native metadata tools do not load: {err}")
    path = _copy(tflite_models[kind], tmp_path)
    embed_tflite_metadata(path, replace(IMAGENET, color="bgr", mean=[0.5], std=[0.25])
                          if kind == "int8" else IMAGENET)
    displayer = support.MetadataDisplayer.with_model_file(str(path))
    assert displayer.get_packed_associated_file_list() == ["labels.txt"]
    assert displayer.get_associated_file_buffer("labels.txt") == b"cat\ndog\nbird\n"
    shown = json.loads(displayer.get_metadata_json())
    image = shown["subgraph_metadata"][0]["input_tensor_metadata"][0]
    assert image["content"]["content_properties"].get("color_space", "UNKNOWN") == ("UNKNOWN" if kind == "int8" else "RGB")
    expected_mean = [127.5] if kind == "int8" else IMAGENET.raw_pixel_normalization()[0]
    assert image["process_units"][0]["options"]["mean"] == pytest.approx(expected_mean, rel=1e-6)
    labels = shown["subgraph_metadata"][0]["output_tensor_metadata"][0]["associated_files"][0]
    assert labels == {"name": "labels.txt", "description": labels["description"], "type": "TENSOR_AXIS_LABELS"}
    blob = displayer.get_metadata_buffer()
    assert _pywrap_metadata_version.GetMinimumMetadataParserVersion(bytes(blob)) == shown["min_parser_version"]


def test_tflite_int8_input_keeps_the_normalization_and_records_quantized_range(tflite_models, tmp_path):
    path = _copy(tflite_models["int8"], tmp_path)
    before, detail = _run_tflite(path)
    embed_tflite_metadata(path, IMAGENET)
    meta, _ = read_tflite_metadata(path)
    tensor = meta.subgraphMetadata[0].inputTensorMetadata[0]
    mean, std = IMAGENET.raw_pixel_normalization()
    np.testing.assert_array_equal(tensor.processUnits[0].options.mean, np.float32(mean))
    np.testing.assert_array_equal(tensor.processUnits[0].options.std, np.float32(std))
    scale, zero_point = detail["quantization"]
    low, high = (np.clip(np.round(v / scale) + zero_point, -128, 127) for v in IMAGENET.input_range)
    assert (tensor.stats.min[0], tensor.stats.max[0]) == (low, high) and low < high
    custom = json.loads(bytes(meta.subgraphMetadata[0].customMetadata[0].data))
    assert custom["input_quantization"] == {"dtype": "int8", "scale": pytest.approx(scale, rel=1e-7),
                                            "zero_point": zero_point}
    np.testing.assert_array_equal(_run_tflite(path)[0], before)


def test_tflite_reembedding_replaces_metadata_labels_and_keeps_buffers_aligned(tflite_models, tmp_path):
    from ai_edge_litert import schema_py_generated as schema

    path = _copy(tflite_models["float"], tmp_path)
    before, _ = _run_tflite(path)
    embed_tflite_metadata(path, IMAGENET)
    size = path.stat().st_size
    embed_tflite_metadata(path, replace(IMAGENET, labels=["a", "b", "c"]))
    _, entries = read_tflite_metadata(path)
    assert entries.count("TFLITE_METADATA") == 1
    assert zipfile.ZipFile(path).read("labels.txt") == b"a\nb\nc\n"
    assert abs(path.stat().st_size - size) < 64  # the old metadata and zip are gone
    np.testing.assert_array_equal(_run_tflite(path)[0], before)
    data = path.read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.BuffersLength()):
        buffer = model.Buffers(i)
        if buffer.DataLength():
            start = buffer._tab.Vector(buffer._tab.Offset(4))
            assert start % 16 == 0, f"buffer {i} data at {start}"


def test_tflite_with_buffers_stored_by_offset_keeps_their_data(tflite_models, tmp_path):
    from ai_edge_litert import schema_py_generated as schema

    path = _copy(tflite_models["offsets"], tmp_path)
    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    assert any(model.Buffers(i).Offset() for i in range(model.BuffersLength()))
    before, _ = _run_tflite(path)
    embed_tflite_metadata(path, IMAGENET)
    assert read_tflite_metadata(path)[0].subgraphMetadata[0].inputTensorMetadata[0].stats.max[0] \
        == np.float32(IMAGENET.input_range[1])
    np.testing.assert_array_equal(_run_tflite(path)[0], before)


def test_tflite_without_ai_edge_litert_tools_uses_tensorflows(tflite_models, tmp_path, monkeypatch):
    import sys

    path = _copy(tflite_models["int8"], tmp_path)
    before, _ = _run_tflite(path)
    from edgekit.backends.tflite import metadata as tflite_metadata

    monkeypatch.setitem(sys.modules, "ai_edge_litert.tools", None)  # import fails -> TensorFlow's schema API
    assert tflite_metadata._tflite_tools()[0].__name__ == "tensorflow.lite.tools.flatbuffer_utils"
    embed_tflite_metadata(path, IMAGENET)
    assert read_tflite_metadata(path)[0].subgraphMetadata[0].customMetadata[0].name == b"edgekit.preprocess"
    monkeypatch.undo()
    np.testing.assert_array_equal(_run_tflite(path)[0], before)


def test_tflite_over_the_flatbuffer_limit_is_refused_untouched(tflite_models, tmp_path, monkeypatch):
    from edgekit.errors import ConversionError
    from edgekit.backends.tflite import metadata as tflite_metadata

    path = _copy(tflite_models["float"], tmp_path)
    original = path.read_bytes()
    monkeypatch.setattr(tflite_metadata, "MAX_FLATBUFFER", len(original) - 1)
    with pytest.raises(ConversionError, match="over 2 GiB"):
        embed_tflite_metadata(path, IMAGENET)
    assert path.read_bytes() == original


def test_tflite_refuses_wrong_labels_and_non_tflite(tflite_models, tmp_path):
    path = _copy(tflite_models["float"], tmp_path)
    original = path.read_bytes()
    with pytest.raises(ModelError, match="2 labels but output"):
        embed_tflite_metadata(path, replace(IMAGENET, labels=["a", "b"]))
    assert path.read_bytes() == original
    bogus = tmp_path / "bogus.tflite"
    bogus.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="TFL3"):
        embed_tflite_metadata(bogus, IMAGENET)


# --- ONNX ---------------------------------------------------------------------------------------

def _onnx_model(path, external=False):
    """Tiny NHWC classifier: Reshape -> MatMul -> Softmax, 8x8x3 -> 3 classes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).normal(size=(192, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["image", "shape"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["scores"], axis=-1)],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 8, 8, 3])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.array([1, 192], np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.metadata_props.add(key="author", value="someone")
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=1024)
    else:
        onnx.save_model(model, str(path))
    return path


def _run_onnx(path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    sample = np.random.default_rng(2).uniform(-2, 2, (1, 8, 8, 3)).astype(np.float32)
    return session.run(None, {"image": sample})[0], session.get_modelmeta().custom_metadata_map


@pytest.mark.parametrize("external", [False, True])
def test_onnx_metadata_props_read_back_and_the_model_runs_unchanged(tmp_path, external):
    import onnx

    path = _onnx_model(tmp_path / "model_int8.onnx", external)
    before, _ = _run_onnx(path)
    assert read_onnx_metadata(path) == {}
    embed_onnx_metadata(path, replace(IMAGENET, color="bgr"))
    contract = replace(IMAGENET, color="bgr", output_name="scores")
    embed_onnx_metadata(path, contract)  # again: replaces the edgekit keys

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    assert props["author"] == "someone"
    assert props["edgekit.color"] == "bgr" and props["edgekit.layout"] == "nhwc"
    assert props["edgekit.output_name"] == "scores"
    assert json.loads(props["edgekit.labels"]) == LABELS
    assert json.loads(props["edgekit.pixel_mean"]) == contract.raw_pixel_normalization()[0]
    assert read_onnx_metadata(path) == contract.to_dict()
    assert InputContract.from_dict(read_onnx_metadata(path)) == contract
    after, runtime_props = _run_onnx(path)
    assert json.loads(runtime_props["edgekit.preprocess"]) == contract.to_dict()
    np.testing.assert_array_equal(after, before)
    if external:
        assert (tmp_path / "weights.bin").is_file() and path.stat().st_size < 2000


def test_onnx_refuses_unknown_output_and_wrong_label_count(tmp_path):
    path = _onnx_model(tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="no output named 'probs'"):
        embed_onnx_metadata(path, replace(IMAGENET, output_name="probs"))
    with pytest.raises(ModelError, match="4 labels but output 'scores' has 3"):
        embed_onnx_metadata(path, replace(IMAGENET, labels=LABELS + ["fish"]))
    with pytest.raises(ModelError, match="has 8 channels in nchw, not the 3 of rgb"):
        embed_onnx_metadata(path, replace(IMAGENET, layout="nchw"))
    assert read_onnx_metadata(path) == {}
