"""Property-based tests: the recipe loader and the calibration loaders, on random input, either
succeed with well-formed results or raise their one EdgekitError naming the file, never anything else."""

from __future__ import annotations

import io
import string

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgekit.calibration.sources import CalibrationSource
from edgekit.errors import CalibrationDataError, RecipeError
from edgekit.recipe.loader import parse_recipe
from edgekit.recipe.schema import Preprocess, Recipe
from edgekit.runtime.base import TensorSpec

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SCHEMA_KEYS = ["name", "precisions", "targets", "input_shapes", "preprocess", "calibration", "int8", "validation",
               "gates", "resize", "scale", "mean", "std", "color", "layout", "num_samples", "runs", "threads",
               "io_dtype", "max_size_bytes", "min_agreement", "source", "fp16", "int8", "nhwc", "rgb"]
keys = st.one_of(st.sampled_from(SCHEMA_KEYS), st.text(string.printable, max_size=12))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["int8", "fp16", "tflite", "rgb", "nchw", "minmax"]))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(keys, inner, max_size=5)),
                         max_leaves=30)


def _shown(key) -> str:
    from edgekit.yamlconfig import _show

    return _show(key)


def _key_path_named(message: str) -> bool:
    problem = message.split(": ", 1)[1]
    return bool(problem) and "\n" not in message


@SETTINGS
@given(st.dictionaries(keys, documents, max_size=6))
def test_random_recipe_dicts_validate_or_name_the_key(data):
    try:
        text = yaml.safe_dump(data)
    except yaml.YAMLError:
        return
    try:
        recipe = parse_recipe(text, "random.yaml")
    except RecipeError as err:
        assert str(err).startswith("random.yaml: ") and _key_path_named(str(err))
        if "unknown key '" in str(err):  # the path starts at a key the document really has
            path = str(err).split("unknown key '", 1)[1][:-1]
            assert any(path == _shown(k) or path.startswith(_shown(k) + ".") for k in data), (path, list(data))
        return
    assert isinstance(recipe, Recipe) and recipe.precisions[0] == "fp32"


@SETTINGS
@given(st.text(max_size=300))
def test_random_yaml_text_never_escapes(text):
    try:
        parse_recipe(text, "t.yaml")
    except RecipeError as err:
        assert str(err).startswith("t.yaml: ") and "\n" not in str(err)


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_recipe_file(tmp_path, data):
    from edgekit.recipe.loader import load_recipe

    path = tmp_path / "r.yaml"
    path.write_bytes(data)
    try:
        load_recipe(str(path))
    except RecipeError as err:
        assert str(err).startswith(f"{path}: ") and "\n" not in str(err)


SPEC = TensorSpec("image", (1, 4, 4, 1), "float32")
GRAY = Preprocess(color="grayscale")
dtypes = st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.boolean_dtypes(), hnp.complex_number_dtypes(),
                   hnp.unicode_string_dtypes(max_len=3))
arrays = hnp.arrays(dtypes, hnp.array_shapes(min_dims=0, max_dims=5, max_side=5))


def _check_samples(source: CalibrationSource) -> None:
    for feeds in source.stream(source.refs):
        array = feeds["image"]
        assert array.shape == SPEC.shape and array.dtype == np.float32 and np.isfinite(array).all()


def _load(folder, path):
    try:
        source = CalibrationSource(folder, [SPEC], GRAY)
        _check_samples(source)
    except CalibrationDataError as err:
        assert err.path in (str(path), str(folder)) and "\n" not in str(err), str(err)


@SETTINGS
@given(arrays)
def test_random_npy_arrays(tmp_path_factory, array):
    folder = tmp_path_factory.mktemp("npy")
    path = folder / "a.npy"
    np.save(path, array)
    _load(folder, path)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["image", "labels", "label", "x"]), arrays, min_size=1, max_size=3))
def test_random_npz_archives(tmp_path_factory, members):
    folder = tmp_path_factory.mktemp("npz")
    path = folder / "a.npz"
    np.savez(path, **members)
    _load(folder, path)


@SETTINGS
@given(st.binary(max_size=400), st.sampled_from([".png", ".jpg", ".bmp", ".npy", ".npz"]))
def test_random_bytes_as_samples(tmp_path_factory, data, suffix):
    folder = tmp_path_factory.mktemp("bytes")
    path = folder / f"sample{suffix}"
    path.write_bytes(data)
    _load(folder, path)


@SETTINGS
@given(st.integers(1, 12), st.integers(1, 12), st.sampled_from(["L", "RGB", "RGBA", "P", "1", "I", "F", "LA"]),
       st.sampled_from(["PNG", "BMP", "JPEG", "GIF", "TIFF"]))
def test_random_images(tmp_path_factory, width, height, mode, fmt):
    from PIL import Image

    folder = tmp_path_factory.mktemp("img")
    buffer = io.BytesIO()
    try:
        Image.new(mode, (width, height)).save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):
        return  # Pillow cannot write that combination
    path = folder / "img.png"
    path.write_bytes(buffer.getvalue())
    _load(folder, path)
