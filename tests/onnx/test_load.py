"""Safe loading: corrupt files, unsupported opsets, external data confinement, opset upgrade."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from edgekit.errors import ModelError, UsageError
from edgekit.backends.onnx.shapes import fix_input_shapes
from edgekit.sources.onnx_load import default_opset, load_onnx, upgrade_opset
from tests.onnx.models import conv_bn_model


def test_truncated_and_garbage_files(tmp_path):
    good = tmp_path / "m.onnx"
    onnx.save(conv_bn_model(), good)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for path in (cut, tmp_path / "empty.onnx", tmp_path / "junk.onnx", tmp_path / "missing.onnx"):
        if path.name == "empty.onnx":
            path.write_bytes(b"")
        if path.name == "junk.onnx":
            path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
        with pytest.raises(ModelError) as err:
            load_onnx(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_unsupported_opset(tmp_path):
    model = conv_bn_model()
    model.opset_import[0].version = 99
    path = tmp_path / "future.onnx"
    onnx.save(model, path)
    with pytest.raises(ModelError, match="unsupported opset 99"):
        load_onnx(path)


def _external_model(tmp_path, location: str):
    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    onnx.external_data_helper.set_external_data(weight, location=location, offset=0, length=64)
    weight.ClearField("raw_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [1, 4])],
                              [helper.make_tensor_value_info("y", 1, [1, 4])], [weight])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "model" / "ext.onnx"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def test_external_data_inside_dir_loads(tmp_path):
    path = _external_model(tmp_path, "weights.bin")
    (path.parent / "weights.bin").write_bytes(np.full((4, 4), 2, np.float32).tobytes())
    model = load_onnx(path)
    assert numpy_helper.to_array(model.graph.initializer[0])[0, 0] == 2


@pytest.mark.parametrize("location", ["/etc/passwd", "../secret.bin", "sub/../../secret.bin", "link.bin", "hard.bin"])
def test_external_data_escaping_is_refused(tmp_path, location):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(64))
    path = _external_model(tmp_path, location)
    if location == "link.bin":
        (path.parent / "link.bin").symlink_to(secret)
    if location == "hard.bin":
        os.link(secret, path.parent / "hard.bin")
    with pytest.raises(ModelError, match="refused"):
        load_onnx(path)


def test_opset_upgrade_records_versions():
    model = conv_bn_model(opset=11)
    upgraded, record = upgrade_opset(model)
    assert record == {"from": 11, "to": 13} and default_opset(upgraded) == 13
    same, record = upgrade_opset(upgraded)
    assert record == {"from": 13, "to": 13} and same is upgraded


def test_fix_input_shapes_errors():
    model = conv_bn_model()
    with pytest.raises(UsageError, match="model's inputs are"):
        fix_input_shapes(model, {"nope": [1, 1, 8, 8]})
    with pytest.raises(UsageError, match="rank 4"):
        fix_input_shapes(model, {"input": [1, 8, 8]})
    fixed, record = fix_input_shapes(model, {"input": [2, 1, 8, 8]})
    assert record["fixed_inputs"] == {"input": [2, 1, 8, 8]}
