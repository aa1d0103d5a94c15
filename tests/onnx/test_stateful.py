"""Issue #10 bug 3: a stateful streaming model (state [2, batch, H], rank-0 `sr`) can be calibrated.

The unknown batch of the RNN state sits on axis 1; .npz files hold one sample exactly as the model
takes it, or many on a leading sample axis that every array has (rank-0 inputs included).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from edgekit.calibration.shape_hint import batch_axes
from edgekit.calibration.sources import CalibrationSource
from edgekit.errors import CalibrationDataError, UsageError
from edgekit.backends.onnx.shapes import fix_input_shapes
from edgekit.sources.onnx_load import input_specs
from edgekit.recipe.schema import Preprocess
from edgekit.runtime.base import TensorSpec
from tests.onnx.stateful import HIDDEN, SAMPLES, stream, streaming_model

SPECS = [TensorSpec("input", (1, SAMPLES), "float32"), TensorSpec("state", (2, 1, HIDDEN), "float32"),
         TensorSpec("sr", (), "int64")]


def test_the_state_batch_on_axis_1_becomes_1_and_the_record_names_the_axis():
    fixed, record = fix_input_shapes(streaming_model(), {"input": [1, SAMPLES]})
    assert input_specs(fixed) == {"input": [1, SAMPLES], "state": [2, 1, HIDDEN], "sr": []}
    assert record["batch_axes"] == {"state": 1}
    with pytest.raises(UsageError, match=r"'input' has dynamic dims \[1\]"):  # the sample length stays unknown
        fix_input_shapes(streaming_model())


def test_only_a_lone_unknown_dim_of_a_dynamic_batch_model_counts_as_its_batch():
    assert batch_axes({"input": [None, None], "state": [2, None, 8], "sr": []}) == {"input": 0, "state": 1}
    assert batch_axes({"tokens": [1, None]}) == {}  # static batch: the unknown dim is a length
    assert batch_axes({"x": [None, 4], "h": [2, None, None]}) == {"x": 0}  # two unknowns: no guess


def test_an_npz_of_one_sample_is_used_exactly_as_stored(tmp_path):
    samples = stream(3)
    for i, sample in enumerate(samples):
        np.savez(tmp_path / f"chunk{i}.npz", **sample)
    source = CalibrationSource(tmp_path, SPECS, Preprocess())
    assert [ref.key for ref in source.refs] == ["chunk0.npz", "chunk1.npz", "chunk2.npz"]
    for ref, sample in zip(source.refs, samples):
        loaded = source.load(ref)
        for name, value in sample.items():
            assert loaded[name].shape == value.shape and loaded[name].dtype == value.dtype
            np.testing.assert_array_equal(loaded[name], value)


def test_an_npz_of_many_samples_has_a_leading_sample_axis_on_every_array(tmp_path):
    samples = stream(5)
    np.savez(tmp_path / "stream.npz", **{k: np.stack([s[k] for s in samples]) for k in samples[0]})
    source = CalibrationSource(tmp_path, SPECS, Preprocess())
    assert len(source.refs) == 5
    loaded = source.load(source.refs[3])
    for name, value in samples[3].items():
        np.testing.assert_array_equal(loaded[name], value)
        assert loaded[name].shape == value.shape


def test_an_npz_whose_arrays_disagree_on_the_sample_axis_is_refused(tmp_path):
    samples = stream(4)
    np.savez(tmp_path / "mixed.npz", input=np.stack([s["input"] for s in samples]),
             state=np.stack([s["state"] for s in samples]), sr=np.array(16000, np.int64))
    with pytest.raises(CalibrationDataError, match=r"\['input', 'state'\] have a leading sample axis .* \['sr'\]"):
        CalibrationSource(tmp_path, SPECS, Preprocess())


def test_compress_calibrates_and_quantizes_the_streaming_model(tmp_path, edgekit_cli):
    model_path = tmp_path / "vad.onnx"
    onnx.save(streaming_model(), model_path)
    data = tmp_path / "data"
    data.mkdir()
    for i, sample in enumerate(stream(30)):
        np.savez(data / f"chunk{i:02d}.npz", **sample)
    out = tmp_path / "out"
    result = edgekit_cli("compress", model_path, "--int8", "-c", data, "-t", "onnx", "--out", out, "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["model"]["fixed_dims"] == {
        "input": {"from": "?x?", "to": f"1x{SAMPLES}"},
        "state": {"from": f"2x?x{HIDDEN}", "to": f"2x1x{HIDDEN}", "batch_axis": "1"}}
    assert "(batch on axis 1)" in (out / "report.md").read_text()
    int8 = next(a for a in report["artifacts"] if a["precision"] == "int8")
    assert int8["op_counts"].get("QuantizeLinear", 0) > 0 and "If" not in int8["op_counts"]
    assert int8["accuracy"]["cosine"] > 0.99
    held_out = out / "validation_inputs.npz"  # rank-0 `sr`: stored with a leading sample axis
    with np.load(held_out) as arrays:
        count = arrays["sr"].shape[0]
        assert arrays["state"].shape == (count, 2, 1, HIDDEN) and count == report["calibration"]["validation_samples"]
    harness = [sys.executable, "edgekit/devices/harness.py", str(out / "vad_fp32.onnx"), "--runs", "1",
               "--inputs", str(held_out), "--outputs", str(tmp_path / "outputs.npz")]
    assert subprocess.run(harness, capture_output=True, text=True, timeout=120).returncode == 0
    with np.load(tmp_path / "outputs.npz") as outputs:
        assert outputs["output"].shape == (count, 1)


def test_shapes_from_the_samples_fill_the_batch_on_its_own_axis(tmp_path):
    from edgekit.calibration.shape_hint import shape_from_calibration
    from edgekit.recipe.schema import Recipe

    recipe = Recipe.model_validate({"calibration": {"source": str(tmp_path)}})
    np.savez(tmp_path / "chunk.npz", **stream(1)[0])
    assert shape_from_calibration(recipe, "input", [None, None], 0) == [1, SAMPLES]
    assert shape_from_calibration(recipe, "state", [2, None, None], None) == [2, 1, HIDDEN]
    (tmp_path / "chunk.npz").unlink()
    np.save(tmp_path / "a.npy", np.zeros((12, 10, 3), np.float32))
    assert shape_from_calibration(recipe, "x", [1, None, None, 3], None) == [1, 12, 10, 3]  # static batch 1
