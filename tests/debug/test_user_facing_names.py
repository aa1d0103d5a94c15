"""Names a user can act on (issue #10, bug 5): full unique node names in fallback results and
errors, messages cut at a sentence or word boundary, and the user's own paths in worker errors."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.errors import ModelError


def _yolo_like(path):
    """Two blocks named like a PyTorch export: '/model.N/conv/Conv', '/model.N/act/Relu' (the last
    path components 'conv' and 'act' repeat), x [1, 3, 8, 8]."""
    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for block, (cin, cout) in enumerate([(3, 8), (8, 8)]):
        w = f"w{block}"
        inits.append(numpy_helper.from_array(rng.normal(0, 0.5, (cout, cin, 3, 3)).astype(np.float32), w))
        nodes += [helper.make_node("Conv", [prev, w], [f"c{block}"], name=f"/model.{block}/conv/Conv",
                                   pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{block}"], [f"r{block}"], name=f"/model.{block}/act/Relu")]
        prev = f"r{block}"
    nodes.append(helper.make_node("GlobalAveragePool", [prev], ["y"], name="/model.2/pool/GlobalAveragePool"))
    graph = helper.make_graph(nodes, "yolo_like", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 1, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return {n.name for n in nodes}


def _arrays(directory, shape, dtype=np.float32, count=30):
    directory.mkdir()
    np.save(directory / "x.npy", np.random.default_rng(1).normal(size=(count, *shape)).astype(dtype))
    return directory


def test_fallback_names_full_unique_nodes(tmp_path, edgekit_cli):
    model = tmp_path / "yolo.onnx"
    names = _yolo_like(model)
    data = _arrays(tmp_path / "data", (3, 8, 8))
    out = tmp_path / "out"
    result = edgekit_cli("compress", model, "--int8", "-c", data, "--min-sqnr", "300", "--max-float-layers", "2",
                         "--out", out, "--runs", "2", "--quiet")
    assert result.code == 10, result.err  # an SQNR of 300 dB cannot be met with 2 of 4 layers float
    int8 = next(a for a in json.loads((out / "report.json").read_text())["artifacts"] if a["precision"] == "int8")
    steps = int8["details"]["fallback"]["steps"]
    best = int8["details"]["fallback"]["float_layers"]
    assert best and set(best) <= names, best
    for step in steps:
        assert step["float_layers"] == step["float_nodes"]  # no Keras names: the node names themselves
        assert len(set(step["float_layers"])) == len(step["float_layers"])
    assert str(best) in result.err  # the gate error names them too
    assert "'conv'" not in result.err and "'act'" not in result.err


def test_shared_keras_labels_get_the_node_name_beside_them():
    from edgekit.backends.selective import QuantNode, keras_layer, unique_layers

    assert keras_layer("model_1/conv1_1", ["conv1"]) == "conv1"
    assert keras_layer("/model.2/cv1/conv", ["conv1"]) is None
    nodes = unique_layers([QuantNode("m/conv1/Conv", "Conv", "conv1", 0), QuantNode("m/conv1/Relu", "Relu", "conv1", 1),
                           QuantNode("m/dense/Gemm", "Gemm", "dense", 2)])
    assert [n.layer for n in nodes] == ["conv1 (m/conv1/Conv)", "conv1 (m/conv1/Relu)", "dense"]


def test_condense_cuts_at_a_sentence_or_word_boundary():
    from edgekit.errors import condense

    text = ("Could not locate class 'MyDense'. Make sure custom classes and functions are decorated with "
            "`@keras.saving.register_keras_serializable()`. Full object config: {'module': 'mylib.layers'}")
    assert condense(text, 150) == "Could not locate class 'MyDense'. Make sure custom classes and functions are " \
                                  "decorated with `@keras.saving.register_keras_serializable()`."
    assert condense(text, 40) == "Could not locate class 'MyDense'."
    cut = condense("word " * 100, 33)
    assert cut.endswith("word …") and len(cut) <= 33
    assert condense("first line\nsecond line") == "first line"
    assert condense(ValueError()) == "ValueError"


@pytest.mark.slow
def test_trust_model_error_names_the_missing_class(tmp_path, edgekit_cli):
    """A .keras with a custom layer the user's code did not register: the error keeps keras's cause
    whole (it used to end in 'returned by `get_config()` ar')."""
    import zipfile

    import keras

    inputs = keras.Input((4,), name="x")
    keras.Model(inputs, keras.layers.Dense(2, name="d")(inputs)).save(tmp_path / "plain.keras")
    custom = tmp_path / "custom.keras"
    with zipfile.ZipFile(tmp_path / "plain.keras") as src, zipfile.ZipFile(custom, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
                dense.update(class_name="MyDense", module="mylib.layers", registered_name="mylib>MyDense")
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    result = edgekit_cli("compress", custom, "--trust-model", "--out", tmp_path / "out", "--quiet")
    assert result.code == 3
    line = result.err.strip().splitlines()[-1]
    assert line.startswith(f"edgekit: error: {custom}: cannot load Keras model: Could not locate class 'MyDense'.")
    assert line.endswith("."), line


def test_worker_error_names_the_users_model_not_a_staging_path(tmp_path, edgekit_cli):
    """INT8 of a float16 ONNX model fails when onnxruntime loads the quantized file, which lives in
    the staging directory that is removed with the failed run: the error names the user's model."""
    import tempfile

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float16), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "half",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 3])], [weight])
    model_proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model_proto.ir_version = 7
    model = tmp_path / "half.onnx"
    onnx.save(model_proto, str(model))
    data = _arrays(tmp_path / "data", (4,), np.float16)
    result = edgekit_cli("compress", model, "--int8", "-c", data, "--out", tmp_path / "out", "--quiet")
    assert result.code != 0
    line = result.err.strip().splitlines()[-1]
    assert line.startswith(f"edgekit: error: {model}: "), line
    assert "half_int8.onnx" in line  # which of edgekit's files it was
    assert ".edgekit-staging-" not in line and f"{tempfile.gettempdir()}/edgekit-" not in line


def test_naming_user_paths_maps_staging_and_work_files(tmp_path):
    """A real error on a file in a staging dir and one quoting a work-dir path, mapped back."""
    import tempfile

    from edgekit.fsutil import atomic_output_dir, naming_user_paths
    from edgekit.runtime.onnx import OnnxRunner

    user_model = tmp_path / "mine.onnx"
    with pytest.raises(ModelError) as caught:
        with naming_user_paths(user_model), atomic_output_dir(tmp_path / "out") as stage:
            (stage / "mine_fp32.onnx").write_bytes(b"not a model")
            OnnxRunner(stage / "mine_fp32.onnx")
    assert caught.value.path == str(user_model)
    assert "in edgekit's intermediate mine_fp32.onnx" in caught.value.problem
    assert ".edgekit-staging-" not in str(caught.value)
    with tempfile.TemporaryDirectory(prefix="edgekit-work-") as work:
        with pytest.raises(ModelError) as caught, naming_user_paths(user_model):
            raise ModelError(f"cannot read {work}/saved/model.pb", tmp_path / "elsewhere")
    assert caught.value.path == str(tmp_path / "elsewhere") and caught.value.problem == "cannot read saved/model.pb"
