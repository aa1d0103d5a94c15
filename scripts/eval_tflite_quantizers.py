"""Compare TFLite quantizers on one Keras model (issue #13, the TFLite ladder): TFLiteConverter
W8A8 and whole-model 16x8, Google's ai-edge-quantizer W8A8 / W8A16 / W8A8 with named layers at
W8A16, and the QuantizationDebugger denylist (named layers float) edgekit uses.

    # ai-edge-quantizer is not an edgekit dependency: install it beside the pinned stack in a throwaway venv
    python -m venv /tmp/aeq && echo $PWD/.venv/lib/python3.11/site-packages > /tmp/aeq/lib/python3.11/site-packages/main.pth
    /tmp/aeq/bin/pip install ai-edge-quantizer
    PYTHONPATH=$PWD /tmp/aeq/bin/python scripts/eval_tflite_quantizers.py MODEL.keras digits|ctc [LAYER,LAYER...]

digits: 8x8 digits input, the shipped holdout images; ctc: the 96x24 recognizer of
tests/validate/test_sequence_compress.py, rendered digit strings. Prints SQNR, top-1 agreement,
(ctc) decoded-sequence match vs the float TFLite model, host latency (1 thread) and build time.
"""
import os, sys, time, json; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, tensorflow as tf, keras
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "validate")); sys.path.insert(0, os.path.join(ROOT, "scripts", "models"))
path, kind = sys.argv[1], sys.argv[2]
model = keras.saving.load_model(path, compile=False)
if kind == "ctc":
    from test_sequence_compress import render, ALPHABET
    rng = np.random.default_rng(11)
    xs = [np.asarray(render("".join(rng.choice(list(ALPHABET), rng.integers(3, 7)))), np.float32)[None, ..., None] / 255 for _ in range(300)]
else:
    from make_models import digits_images, HOLDOUT
    images, _ = digits_images(); xs = [images[i][None, :, :, None].astype(np.float32) / 255 for i in range(len(images) - HOLDOUT, len(images))]
cal, val = xs[:200], xs[200:]
import tempfile, contextlib, io
saved = tempfile.mkdtemp()
arc = keras.export.ExportArchive(); arc.track(model)
arc.add_endpoint("serving_default", lambda image: {"out": model(image, training=False)}, input_signature=[tf.TensorSpec((1,) + tuple(model.inputs[0].shape[1:]), tf.float32, name="image")])
with contextlib.redirect_stdout(io.StringIO()): arc.write_out(saved)
def conv(mode):
    c = tf.lite.TFLiteConverter.from_saved_model(saved)
    if mode != "fp32":
        c.optimizations = [tf.lite.Optimize.DEFAULT]; c.representative_dataset = lambda: ({"image": x} for x in cal)
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] if mode == "int8" else [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return bytes(c.convert())
from ai_edge_litert.interpreter import Interpreter
def q(x, d):
    if d["dtype"] == np.float32: return x
    s, z = d["quantization"]; info = np.iinfo(d["dtype"])
    return np.clip(np.round(x / s + z), info.min, info.max).astype(d["dtype"])
def dq(y, d):
    if d["dtype"] == np.float32: return y
    s, z = d["quantization"]; return ((y.astype(np.float32) - z) * s)
def run(fb):
    it = Interpreter(model_content=fb, num_threads=1); it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    res = []
    for x in val:
        it.set_tensor(inp["index"], q(x, inp)); it.invoke(); res.append(dq(it.get_tensor(out["index"]), out))
    t = time.perf_counter()
    for _ in range(50): it.set_tensor(inp["index"], q(val[0], inp)); it.invoke()
    return np.concatenate(res), (time.perf_counter() - t) / 50 * 1000
def decode(p):  # CTC greedy, blank = last
    out = []
    for row in p.argmax(-1):
        s, prev = [], -1
        for c in row:
            if c != prev and c != p.shape[-1] - 1: s.append(int(c))
            prev = c
        out.append(tuple(s))
    return out
results = {}
t = time.time(); fp32 = conv("fp32"); ref, lat = run(fp32); results["fp32"] = {"latency_ms": lat}
def score(tag, fb, secs):
    out, lat = run(fb)
    err = out - ref; r = {"bytes": len(fb), "build_s": round(secs, 1), "latency_ms": round(lat, 4),
         "sqnr_db": round(float(10 * np.log10((ref ** 2).sum() / max((err ** 2).sum(), 1e-30))), 2),
         "agreement": round(float((out.argmax(-1) == ref.argmax(-1)).mean()), 4)}
    if kind == "ctc": r["sequence_match"] = round(float(np.mean([a == b for a, b in zip(decode(out), decode(ref))])), 4)
    results[tag] = r; print(tag, r, flush=True)
for mode in ("int8", "16x8"):
    t = time.time()
    try: score(f"converter_{mode}", conv(mode), time.time() - t)
    except Exception as e: print(mode, "failed", str(e)[:300])
from ai_edge_quantizer import quantizer, recipe
from ai_edge_quantizer.qtyping import TFLOperationName as Op
sig = list(Interpreter(model_content=fp32).get_signature_list())[0]
inname = Interpreter(model_content=fp32).get_signature_list()[sig]["inputs"][0]
def aeq(rec, extra=None):
    t = time.time(); q = quantizer.Quantizer(fp32, rec)
    if extra: extra(q)
    calib = q.calibrate({sig: [{inname: x} for x in cal]})
    return bytes(q.quantize(calib).quantized_model), time.time() - t
for tag, rec in (("aeq_w8a8", recipe.static_wi8_ai8()), ("aeq_w8a16", recipe.static_wi8_ai16())):
    try: fb, s = aeq(rec); score(tag, fb, s)
    except Exception as e: print(tag, "failed", repr(e)[:400])
# mixed: the named layers at W8A16 (ai-edge-quantizer) / float (converter debugger denylist), the rest W8A8
names = sys.argv[3].split(",") if len(sys.argv) > 3 else []
if names:
    rx = "|".join(f".*{n}.*" for n in names)
    def extra(qz):
        qz.add_static_config(regex=rx, operation_name=Op.ALL_SUPPORTED, activation_num_bits=16, weight_num_bits=8)
    try: fb, s = aeq(recipe.static_wi8_ai8(), extra); score("aeq_mixed_w8a16", fb, s)
    except Exception as e: print("aeq mixed failed", repr(e)[:600])
    from ai_edge_litert.interpreter import Interpreter as I2
    t = time.time()
    c = tf.lite.TFLiteConverter.from_saved_model(saved); c.optimizations = [tf.lite.Optimize.DEFAULT]; c.representative_dataset = lambda: ({"image": x} for x in cal)
    dbg = tf.lite.experimental.QuantizationDebugger(converter=c, debug_options=tf.lite.experimental.QuantizationDebugOptions())
    from edgekit.backends.tflite.inspect import read_ops
    deny = [op.output_names[0] for op in read_ops(dbg.calibrated_model) if any(n in op.output_names[0] for n in names)]
    dbg.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=deny)
    score("converter_denylist_float", bytes(dbg.get_nondebug_quantized_model()), time.time() - t)
    