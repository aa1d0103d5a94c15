"""The hardening itself, without TensorFlow: symlinks out, huge declared sizes, bombs, aliases."""

from __future__ import annotations

import io
import logging
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from edgekit.calibration.sources import CalibrationSource, read_labels
from edgekit.errors import CalibrationDataError, ModelError, RecipeError
from edgekit.model.checks import check_model_path
from edgekit.recipe.loader import parse_recipe
from edgekit.recipe.schema import Preprocess
from edgekit.runtime.base import TensorSpec
from tests.safety.corpus import _forge_declared_size, _header, _zip, npy_bytes

SPEC = [TensorSpec("image", (1, 8, 8, 1), "float32")]
GRAY = Preprocess(color="grayscale")


@pytest.fixture
def outside_secret(tmp_path):
    """A passwd-like file outside the calibration directory."""
    secret = tmp_path / "etc" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    return secret


def test_symlinks_out_of_the_calibration_dir_are_not_followed(tmp_path, outside_secret, caplog):
    folder = tmp_path / "cal"
    folder.mkdir()
    np.save(folder / "good.npy", np.zeros((8, 8, 1), np.float32))
    (folder / "passwd.png").symlink_to(outside_secret)
    (folder / "passwd.npy").symlink_to(outside_secret)
    (folder / "labels.csv").symlink_to(outside_secret)
    (folder / "etc").symlink_to(outside_secret.parent)
    (folder / "root").symlink_to("/")
    (folder / "inside.npy").symlink_to(folder / "good.npy")  # inside: fine
    with caplog.at_level(logging.WARNING, logger="edgekit"):
        started = time.monotonic()
        source = CalibrationSource(folder, SPEC, GRAY)
    assert time.monotonic() - started < 10  # "/" was not walked (a hang guard, not a speed target)
    assert sorted(r.key for r in source.refs) == ["good.npy", "inside.npy"]
    assert source.labels == {}
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "passwd.png" in warned and "passwd.npy" in warned and "labels.csv" in warned


def test_only_links_out_means_no_samples(tmp_path, outside_secret):
    folder = tmp_path / "cal"
    folder.mkdir()
    (folder / "passwd.png").symlink_to(outside_secret)
    with pytest.raises(CalibrationDataError, match="no samples found"):
        CalibrationSource(folder, SPEC, GRAY)


@pytest.mark.parametrize("shape", [(10**12, 8, 8, 1), (2**40, 2**40, 2**40), (2**62, 2)])
def test_huge_declared_npy_dims_do_not_allocate(tmp_path, shape):
    folder = tmp_path / "cal"
    folder.mkdir()
    (folder / "big.npy").write_bytes(npy_bytes(_header("<f4", shape), bytes(256)))
    (folder / "big.npz").write_bytes(_zip({"image.npy": npy_bytes(_header("<f4", shape), bytes(256))}))
    tracemalloc.start()
    try:
        with pytest.raises(CalibrationDataError, match="declares|implausible"):
            CalibrationSource(folder, SPEC, GRAY)
        assert tracemalloc.get_traced_memory()[1] < 16 << 20
    finally:
        tracemalloc.stop()


def test_npy_declared_size_must_match_the_file(tmp_path):
    folder = tmp_path / "cal"
    folder.mkdir()
    (folder / "short.npy").write_bytes(npy_bytes(_header("<f4", (3, 8, 8, 1)), bytes(256)))
    with pytest.raises(CalibrationDataError, match="truncated or corrupt") as info:
        CalibrationSource(folder, SPEC, GRAY)
    assert info.value.path == str(folder / "short.npy")


def test_labels_csv_limits(tmp_path):
    path = tmp_path / "labels.csv"
    for data, needle in [(b"a.png,1\n" + b"x" * 200_000 + b",1\n", "not a valid CSV"),
                         (b"f,l\na.png,-1\n", "negative"), (b"f,l\na.png,\xff\n", "not UTF-8")]:
        path.write_bytes(data)
        with pytest.raises(CalibrationDataError, match=needle):
            read_labels(path)


def _keras_like(**members) -> bytes:
    return _zip({"config.json": b'{"class_name": "Functional", "module": "keras", "config": {}}',
                 "metadata.json": b"{}", **members}, zipfile.ZIP_DEFLATED)


@pytest.mark.parametrize("name,data,needle", [
    ("bomb", _keras_like(**{"padding.bin": bytes(16 << 20)}), "zip bomb"),
    ("forged", _forge_declared_size(_keras_like(), 0xFFFFFFF0), "zip bomb|over the|corrupt"),
    ("escape", _keras_like(**{"../x": b"1"}), "escapes the archive"),
    ("not-hdf5", _keras_like(**{"model.weights.h5": b"garbage" * 8}), "not HDF5"),
])
def test_keras_archive_checks(tmp_path, name, data, needle):
    path = tmp_path / f"{name}.keras"
    path.write_bytes(data)
    started = time.monotonic()
    with pytest.raises(ModelError, match=needle):
        check_model_path(path)
    assert time.monotonic() - started < 5  # a hang guard, not a speed target


@pytest.mark.parametrize("module,refused", [("keras.layers", False), ("keras", False), ("tf_keras.layers", False),
                                            ("keras_evil", True), ("evil", True), ("kerasx.layers", True)])
def test_custom_object_modules(tmp_path, module, refused):
    config = ('{"class_name": "Functional", "module": "keras", "config": {"layers": [{"class_name": "Dense", '
              f'"module": "{module}", "config": {{"name": "d"}}}}]}}}}')
    path = tmp_path / "m.keras"
    path.write_bytes(_zip({"config.json": config.encode()}))
    if refused:
        with pytest.raises(ModelError, match="custom object"):
            check_model_path(path)
    else:
        assert check_model_path(path).format == "keras"


def test_tflite_is_refused_as_an_input(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    with pytest.raises(ModelError, match="output of edgekit, not an input"):
        check_model_path(path)


def test_protobuf_walk_catches_truncation(tmp_path):
    pb = tmp_path / "sm"
    pb.mkdir()
    (pb / "saved_model.pb").write_bytes(b"\x08\x01\x12\x80\x01" + bytes(10))  # meta_graphs declares 128 bytes
    with pytest.raises(ModelError, match="past the end"):
        check_model_path(pb)


def test_billion_laughs_is_refused_cheaply():
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9))
    started = time.monotonic()
    with pytest.raises(RecipeError, match="after expanding YAML aliases"):
        parse_recipe(laughs, "laughs.yaml")
    assert time.monotonic() - started < 5  # a hang guard, not a speed target


def test_flags_do_not_hide_a_bad_value_in_the_recipe():
    with pytest.raises(RecipeError, match="validation.runs"):
        parse_recipe("validation:\n  runs: -5\n", "r.yaml", {"validation": {"runs": 3}})


def test_png_cut_before_its_end_chunk_is_refused(tmp_path):
    """Pillow decodes a PNG whose IEND is missing; a partial copy is still refused, naming the file."""
    from PIL import Image

    from edgekit.calibration.preprocess import load_image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, format="PNG")
    whole, cut = tmp_path / "whole.png", tmp_path / "cut.png"
    whole.write_bytes(buffer.getvalue())
    cut.write_bytes(buffer.getvalue()[:-12])
    assert load_image(whole, SPEC[0], GRAY).shape == (1, 8, 8, 1)
    with pytest.raises(CalibrationDataError, match="truncated PNG") as err:
        load_image(cut, SPEC[0], GRAY)
    assert "cut.png" in str(err.value)
