"""Compare TFLite quantizers on one Keras model (issue #13, the TFLite ladder): TFLiteConverter
W8A8 and whole-model 16x8, Google's ai-edge-quantizer W8A8 / W8A16 / W8A8 with named layers at
W8A16, and the QuantizationDebugger denylist (named layers float) edgekit uses.

    # ai-edge-quantizer is not an edgekit dependency: install it beside the pinned stack in a throwaway venv
    python -m venv /tmp/aeq && echo $PWD/.venv/lib/python3.11/site-packages > /tmp/aeq/lib/python3.11/site-packages/main.pth
    /tmp/aeq/bin/pip install ai-edge-quantizer
    /tmp/aeq/bin/python -m scripts.eval_tflite_quantizers MODEL.keras digits|ctc [LAYER,LAYER...]

digits: 8x8 digits input, the shipped holdout images; ctc: the 96x24 recognizer of
tests/validate/test_sequence_compress.py, rendered digit strings. Prints SQNR, top-1 agreement,
(ctc) decoded-sequence match vs the float TFLite model, host latency (1 thread) and build time.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def samples(kind: str) -> list[np.ndarray]:
    """300 float inputs [1, H, W, 1]: rendered digit strings (ctc) or the holdout digits."""
    if kind == "ctc":
        from tests.validate.test_sequence_compress import ALPHABET, render

        rng = np.random.default_rng(11)
        texts = ["".join(rng.choice(list(ALPHABET), rng.integers(3, 7))) for _ in range(300)]
        return [np.asarray(render(t), np.float32)[None, ..., None] / 255 for t in texts]
    from scripts.models.make_models import HOLDOUT, digits_images

    images, _ = digits_images()
    return [images[i][None, :, :, None].astype(np.float32) / 255 for i in range(len(images) - HOLDOUT, len(images))]


def export(model, tf) -> str:
    import keras

    saved = tempfile.mkdtemp()
    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = tf.TensorSpec((1,) + tuple(model.inputs[0].shape[1:]), tf.float32, name="image")
    archive.add_endpoint("serving_default", lambda image: {"out": model(image, training=False)}, input_signature=[spec])
    with contextlib.redirect_stdout(io.StringIO()):
        archive.write_out(saved)
    return saved


def _to(value, detail):
    if detail["dtype"] == np.float32:
        return value
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(value / scale + zero), info.min, info.max).astype(detail["dtype"])


def _from(value, detail):
    if detail["dtype"] == np.float32:
        return value
    scale, zero = detail["quantization"]
    return (value.astype(np.float32) - zero) * scale


def run(model: bytes, inputs) -> tuple[np.ndarray, float]:
    """(outputs on `inputs`, mean ms of 50 runs) in ai-edge-litert, 1 thread; int I/O (de)quantized."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for x in inputs:
        interpreter.set_tensor(inp["index"], _to(x, inp))
        interpreter.invoke()
        results.append(_from(interpreter.get_tensor(out["index"]), out))
    start = time.perf_counter()
    for _ in range(50):
        interpreter.set_tensor(inp["index"], _to(inputs[0], inp))
        interpreter.invoke()
    return np.concatenate(results), (time.perf_counter() - start) / 50 * 1000


def decode(probs: np.ndarray) -> list[tuple]:
    """CTC greedy decoding, blank = the last class."""
    decoded = []
    for row in probs.argmax(-1):
        text, previous = [], -1
        for c in row:
            if c != previous and c != probs.shape[-1] - 1:
                text.append(int(c))
            previous = c
        decoded.append(tuple(text))
    return decoded


def main(path: str, kind: str, names: list[str]) -> None:
    import keras
    import tensorflow as tf
    from ai_edge_quantizer import quantizer, recipe
    from ai_edge_quantizer.qtyping import TFLOperationName

    model = keras.saving.load_model(path, compile=False)
    xs = samples(kind)
    cal, val = xs[:200], xs[200:]
    saved = export(model, tf)

    def convert(mode: str) -> bytes:
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if mode != "fp32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ({"image": x} for x in cal)
            ops = tf.lite.OpsSet
            converter.target_spec.supported_ops = [
                ops.TFLITE_BUILTINS_INT8 if mode == "int8" else ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        return bytes(converter.convert())

    fp32 = convert("fp32")
    reference, _ = run(fp32, val)

    def score(tag: str, flatbuffer: bytes, seconds: float) -> None:
        out, latency = run(flatbuffer, val)
        error = out - reference
        row = {"bytes": len(flatbuffer), "build_s": round(seconds, 1), "latency_ms": round(latency, 4),
               "sqnr_db": round(float(10 * np.log10((reference ** 2).sum() / max((error ** 2).sum(), 1e-30))), 2),
               "agreement": round(float((out.argmax(-1) == reference.argmax(-1)).mean()), 4)}
        if kind == "ctc":
            row["sequence_match"] = round(float(np.mean([a == b for a, b in zip(decode(out), decode(reference))])), 4)
        print(tag, row, flush=True)

    for mode in ("int8", "16x8"):
        start = time.time()
        score(f"converter_{mode}", convert(mode), time.time() - start)
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_content=fp32).get_signature_list()
    signature = list(signatures)[0]
    input_name = signatures[signature]["inputs"][0]

    def aeq(base, extra=None) -> tuple[bytes, float]:
        start = time.time()
        q = quantizer.Quantizer(fp32, base)
        if extra:
            extra(q)
        calibration = q.calibrate({signature: [{input_name: x} for x in cal]})
        return bytes(q.quantize(calibration).quantized_model), time.time() - start

    score("aeq_w8a8", *aeq(recipe.static_wi8_ai8()))
    score("aeq_w8a16", *aeq(recipe.static_wi8_ai16()))
    if not names:
        return
    pattern = "|".join(f".*{n}.*" for n in names)
    score("aeq_mixed_w8a16", *aeq(recipe.static_wi8_ai8(), lambda q: q.add_static_config(
        regex=pattern, operation_name=TFLOperationName.ALL_SUPPORTED, activation_num_bits=16, weight_num_bits=8)))
    from edgekit.backends.tflite.inspect import read_ops

    start = time.time()
    converter = tf.lite.TFLiteConverter.from_saved_model(saved)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ({"image": x} for x in cal)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_options=tf.lite.experimental.QuantizationDebugOptions())
    deny = [op.output_names[0] for op in read_ops(debugger.calibrated_model)
            if any(n in op.output_names[0] for n in names)]
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=deny)
    score("converter_denylist_float", bytes(debugger.get_nondebug_quantized_model()), time.time() - start)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[2] not in ("digits", "ctc"):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3].split(",") if len(sys.argv) == 4 else [])
