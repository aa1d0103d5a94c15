"""The preprocessing contract (issue 9): five models trained on digits, each expecting another
preprocessing, compress with no preprocessing flag to the one they were trained with; a wrong
--scale stops before any conversion; INT8 stays within 1 pt of float on a test set edgekit never saw."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.compress.test_artifact_metadata import read_tflite_metadata

from scripts.models import preprocess_models as pm
WRONG_SCALE = {"rescaling": 1 / 255}  # the case: a raw-pixel model fed [0, 1]; others: black


# The default run covers NCHW + ImageNet mean/std (ONNX), BGR and grayscale; the in-model
# Rescaling/Normalization kinds also have unit tests (preprocessing chain), so their ~30 s
# end-to-end runs are nightly (-m slow).
KIND_PARAMS = [pytest.param(k, marks=pytest.mark.slow) if k in ("rescaling", "symmetric") else k for k in pm.KINDS]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = {}

    def get(kind: str):
        if kind not in cache:
            cache[kind] = pm.build(kind, tmp_path_factory.mktemp(kind))
        return cache[kind]

    return get


def _run_float(model_path, x):
    if model_path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        return np.concatenate([session.run(None, {"pixels": x[i:i + 1]})[0] for i in range(len(x))])
    import keras

    return keras.saving.load_model(model_path).predict(x, verbose=0)


def _run_artifact(path, x):
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for i in range(len(x)):
        interpreter.set_tensor(inp["index"], x[i:i + 1])
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"]).copy())
    return np.concatenate(results)


@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_compress_chooses_the_trained_preprocessing(kind, built, edgekit_cli, tmp_path):
    model, data, (x_test, y_test) = built(kind)
    out = tmp_path / "out"
    result = edgekit_cli("compress", model, "--int8", "-c", data, "--out", out, "--json", "--quiet")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    used = report["preprocessing"]["values"]
    for field, want in pm.EXPECTED[kind].items():
        if isinstance(want, float):
            assert used[field] == pytest.approx(want), (field, report["preprocessing"])
        elif isinstance(want, list):
            assert used[field] == pytest.approx(want), (field, report["preprocessing"])
        else:
            assert used[field] == want, (field, report["preprocessing"])
    if kind == "rescaling":
        assert report["preprocessing"]["origins"]["scale"] == "model"
        assert "rescaling" in report["preprocessing"]["inside_model"]
    assert report["preprocessing"]["float_accuracy"]["accuracy"] > 0.9
    int8 = next(a for a in report["artifacts"] if a["precision"] == "int8")
    for artifact in report["artifacts"]:
        _assert_embedded(out / artifact["path"], used)
    float_acc = np.mean(np.argmax(_run_float(model, x_test), axis=1) == y_test)
    int8_acc = np.mean(np.argmax(_run_artifact(out / int8["path"], x_test), axis=1) == y_test)
    assert float_acc > 0.9
    assert abs(int8_acc - float_acc) <= 0.01, (float_acc, int8_acc)


@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_wrong_scale_stops_before_conversion(kind, built, edgekit_cli, tmp_path):
    model, data, _ = built(kind)
    out = tmp_path / "out"
    result = edgekit_cli("compress", model, "--int8", "-c", data, "--out", out, "--scale",
                         WRONG_SCALE.get(kind, 1e-6))
    assert result.code == 4, result.err
    line = result.err.strip().splitlines()[-1]
    assert "float model scores" in line and "chance is 10.0%" in line and "best candidate:" in line, line
    assert str(data) in line
    assert not out.exists()


def test_unlabelled_images_warn_once_and_explain_prints_the_origins(built, edgekit_cli, tmp_path):
    model, data, _ = built("grayscale")
    unlabelled = tmp_path / "unlabelled"
    shutil.copytree(data, unlabelled)
    (unlabelled / "labels.csv").unlink()
    result = edgekit_cli("compress", model, "--fp16", "-c", unlabelled, "--out", tmp_path / "out")
    assert result.code == 0, result.err
    assert result.err.count("preprocessing is unverified") == 1
    explained = edgekit_cli("compress", model, "-c", data, "--explain-preprocessing", "--json", "--quiet")
    assert explained.code == 0, explained.err
    info = json.loads(explained.out)
    assert info["origins"]["color"] == "model" and info["values"]["color"] == "grayscale"
    assert {c["name"] for c in info["probe"]["candidates"]} == {"raw 0..255 grayscale", "[0, 1] grayscale",
                                                                 "[-1, 1] grayscale"}
    assert not (tmp_path / "explain").exists()


def _assert_embedded(path, used):
    """The artifact carries the preprocessing used for calibration (read back with the readers)."""
    from edgekit.backends.onnx.metadata import read_onnx_metadata

    if path.suffix == ".onnx":
        declared = read_onnx_metadata(path)
    else:
        metadata, _ = read_tflite_metadata(path)
        subgraph = metadata.subgraphMetadata[0]
        norm = subgraph.inputTensorMetadata[0].processUnits[0].options
        scale, offset = used["scale"], used["offset"]
        mean, std = np.asarray(used["mean"] or [0.0]), np.asarray(used["std"] or [1.0])
        np.testing.assert_allclose(norm.mean, (mean - offset) / scale, rtol=1e-5)
        np.testing.assert_allclose(norm.std, std / scale, rtol=1e-5)
        declared = json.loads(bytes(subgraph.customMetadata[0].data))
    for field in ("scale", "offset", "mean", "std", "color", "layout"):
        want = used[field]
        assert declared[field] == (pytest.approx(want) if isinstance(want, (float, list)) else want), field
