"""edgekit on-device benchmark harness: one self-contained file, pushed to the device and run there.

Needs only the standard library, numpy, and one of ai_edge_litert / tflite_runtime (for .tflite)
or onnxruntime (for .onnx). It must not import edgekit, and stays Python 3.6 compatible.

    python3 harness.py MODEL [--threads N] [--runs 50] [--warmup 5] [--duration SECONDS]
                       [--affinity HEXMASK] [--seed 0] [--inputs IN.npz] [--outputs OUT.npz]
                       [--result RESULT.json] [--runtime auto|ai_edge_litert|tflite_runtime|onnxruntime]

Measures cold start (load + first inference), runs the warm-up, then the timed runs (or every run
inside a --duration window: sustained mode), and prints ONE JSON document on stdout (also written
to --result): latencies in ms with their start times, peak RSS (getrusage), runtime name/version,
python/numpy versions, thermal zone temperatures before and after, CPU governor. Inputs are random
(seeded) in each input's dtype unless --inputs gives them (arrays by input name, no pickle;
(N, ...) arrays for a batch-1 input are N samples, the first one is timed); with --outputs every
sample's outputs are saved stacked by output name (integer outputs dequantized to float32).
Exit status: 0 ok, 2 bad arguments or inputs, 3 model/runtime failure; the JSON then has "error".
"""

import argparse
import glob
import json
import os
import platform
import resource
import sys
import time

HARNESS_VERSION = 1


class HarnessError(Exception):
    def __init__(self, message, code=3):
        Exception.__init__(self, message)
        self.code = code


def package_version(dist, module):
    try:
        from importlib.metadata import version  # Python >= 3.8
        return version(dist)
    except Exception:
        return str(getattr(module, "__version__", "unknown"))


class TfliteModel(object):
    """A .tflite file on ai_edge_litert (preferred) or tflite_runtime; dynamic dims set to 1."""

    def __init__(self, path, threads, runtime):
        names = ["ai_edge_litert", "tflite_runtime"] if runtime == "auto" else [runtime]
        interpreter_cls = None
        for name in names:
            try:
                module = __import__(name + ".interpreter", fromlist=["Interpreter"])
            except ImportError:
                continue
            interpreter_cls = module.Interpreter
            dist = "ai-edge-litert" if name == "ai_edge_litert" else "tflite-runtime"
            self.runtime = {"name": name, "version": package_version(dist, sys.modules[name])}
            break
        if interpreter_cls is None:
            raise HarnessError("no TFLite runtime on this device (pip install ai-edge-litert)")
        kwargs = {"model_path": path}
        if threads:
            kwargs["num_threads"] = threads
        self.interp = interpreter_cls(**kwargs)
        for detail in self.interp.get_input_details():
            signature = detail.get("shape_signature")
            if signature is not None and any(int(d) < 0 for d in signature):
                shape = [int(d) if int(d) > 0 else 1 for d in signature]
                self.interp.resize_tensor_input(detail["index"], shape)
        self.interp.allocate_tensors()
        self._in = self.interp.get_input_details()
        self._out = self.interp.get_output_details()

    def specs(self, which):
        details = self._in if which == "inputs" else self._out
        return [{"name": d["name"], "shape": [int(x) for x in d["shape"]],
                 "dtype": d["dtype"].__name__ if hasattr(d["dtype"], "__name__") else str(d["dtype"]),
                 "quantization": [float(d["quantization"][0]), int(d["quantization"][1])]}
                for d in details]

    def bind(self, feeds):
        for detail in self._in:
            self.interp.set_tensor(detail["index"], feeds[detail["name"]])

    def infer(self):
        self.interp.invoke()

    def outputs(self):
        return dict((d["name"], self.interp.get_tensor(d["index"])) for d in self._out)


ONNX_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
               "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int16)": "int16",
               "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(bool)": "bool"}


class OnnxModel(object):
    """A .onnx file on onnxruntime's CPU provider; symbolic dims set to 1."""

    def __init__(self, path, threads, runtime):
        try:
            import onnxruntime
        except ImportError:
            raise HarnessError("no onnxruntime on this device (pip install onnxruntime)") from None
        self.runtime = {"name": "onnxruntime", "version": onnxruntime.__version__}
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(path, sess_options=options,
                                                    providers=["CPUExecutionProvider"])
        self._feeds = None
        self._last = None

    def specs(self, which):
        nodes = self.session.get_inputs() if which == "inputs" else self.session.get_outputs()
        return [{"name": n.name, "dtype": ONNX_DTYPES.get(n.type, n.type), "quantization": [0.0, 0],
                 "shape": [d if isinstance(d, int) and d > 0 else 1 for d in (n.shape or [])]}
                for n in nodes]

    def bind(self, feeds):
        self._feeds = feeds

    def infer(self):
        self._last = self.session.run(None, self._feeds)

    def outputs(self):
        return dict((spec["name"], value) for spec, value in zip(self.specs("outputs"), self._last))


def load_model(path, threads, runtime):
    lowered = path.lower()
    if lowered.endswith(".tflite"):
        return TfliteModel(path, threads, runtime)
    if lowered.endswith(".onnx"):
        return OnnxModel(path, threads, runtime)
    raise HarnessError("unsupported artifact %s (want .tflite or .onnx)" % os.path.basename(path), 2)


def random_feeds(np, specs, seed):
    """Seeded random inputs: N(0,1) floats, the full range for int8/uint8, [0, 10) other ints."""
    rng = np.random.RandomState(seed)
    feeds = {}
    for spec in specs:
        dtype, shape = np.dtype(spec["dtype"]), tuple(spec["shape"])
        if dtype.kind == "f":
            feeds[spec["name"]] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[spec["name"]] = rng.random_sample(shape) < 0.5
        elif dtype.itemsize == 1:
            info = np.iinfo(dtype)
            feeds[spec["name"]] = rng.randint(info.min, info.max + 1, size=shape).astype(dtype)
        else:
            feeds[spec["name"]] = rng.randint(0, 10, size=shape).astype(dtype)
    return feeds


def file_feeds(np, specs, path):
    """A list of feed dicts from an .npz (no pickle), arrays by input name (or the only array for
    a one-input model). An array of the input's shape is one sample, one of shape (N, *shape) is N
    samples; for a batch-1 input an array of shape (N, ...) is N samples too. Float data for
    integer inputs is quantized with scale/zp."""
    try:
        archive = np.load(path, allow_pickle=False)
        arrays = dict((name, archive[name]) for name in archive.files)
    except Exception as err:
        raise HarnessError("cannot read inputs %s: %s" % (path, err), 2) from None
    columns, count = {}, None
    for spec in specs:
        if spec["name"] in arrays:
            value = arrays[spec["name"]]
        elif len(specs) == 1 and len(arrays) == 1:
            value = list(arrays.values())[0]
        else:
            raise HarnessError("inputs %s have no array %r (has %s)"
                               % (path, spec["name"], sorted(arrays)), 2)
        dtype = np.dtype(spec["dtype"])
        scale, zero_point = spec["quantization"]
        if dtype.kind in "iu" and value.dtype.kind == "f" and scale > 0:
            info = np.iinfo(dtype)
            value = np.clip(np.round(value / scale + zero_point), info.min, info.max)
        shape = tuple(spec["shape"])
        if tuple(value.shape) == shape:
            samples = value[None, ...]
        elif value.ndim == len(shape) + 1 and tuple(value.shape[1:]) == shape:  # leading sample axis
            samples = value
        elif shape and shape[0] == 1 and value.ndim == len(shape) and value.shape[1:] == shape[1:]:
            samples = value[:, None, ...]
        else:
            raise HarnessError("input %r: shape %s, model wants %s (or N samples of it)"
                               % (spec["name"], list(value.shape), list(shape)), 2)
        if count is not None and len(samples) != count:
            raise HarnessError("inputs %s: arrays hold different sample counts" % path, 2)
        count = len(samples)
        columns[spec["name"]] = samples.astype(dtype)
    return [dict((name, column[i, ...]) for name, column in columns.items()) for i in range(count or 0)]


def dequantized_outputs(np, model):
    """The current outputs by name, integer outputs dequantized to float32."""
    arrays = {}
    specs = dict((spec["name"], spec) for spec in model.specs("outputs"))
    for name, value in model.outputs().items():
        scale, zero_point = specs[name]["quantization"]
        if value.dtype.kind in "iu" and scale > 0:
            value = ((value.astype(np.float32) - zero_point) * scale).astype(np.float32)
        arrays[name] = np.array(value)
    return arrays


def save_outputs(np, model, samples, first, path):
    """Run every sample after the first (whose outputs are `first`) and save the outputs stacked
    along axis 0, by output name."""
    collected = dict((name, [value]) for name, value in first.items())
    for feeds in samples[1:]:
        model.bind(feeds)
        model.infer()
        for name, value in dequantized_outputs(np, model).items():
            collected[name].append(value)
    model.bind(samples[0])
    with open(path, "wb") as handle:
        np.savez(handle, **dict((name, np.concatenate(values, axis=0))
                                for name, values in collected.items()))
    return len(samples)


def read_temperatures():
    temps = {}
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        try:
            with open(os.path.join(zone, "temp")) as handle:
                milli = int(handle.read().strip())
        except (OSError, ValueError):
            continue
        try:
            with open(os.path.join(zone, "type")) as handle:
                name = handle.read().strip() or os.path.basename(zone)
        except OSError:
            name = os.path.basename(zone)
        key, n = name, 1
        while key in temps:
            key, n = "%s_%d" % (name, n), n + 1
        temps[key] = milli / 1000.0
    return temps


def read_governor():
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def set_affinity(mask):
    """Pin this process (and the runtime threads it starts later) to the CPUs of a hex mask."""
    try:
        bits = int(mask, 16)
    except ValueError:
        raise HarnessError("bad CPU affinity mask %r (want hex, e.g. f0)" % mask, 2) from None
    cpus = [cpu for cpu in range(bits.bit_length()) if bits >> cpu & 1]
    if not cpus or not hasattr(os, "sched_setaffinity"):
        raise HarnessError("cannot set CPU affinity %r on this system" % mask, 2)
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as err:
        raise HarnessError("cannot set CPU affinity %r: %s" % (mask, err), 2) from None
    return cpus


def peak_rss_mb():
    """This process's peak RSS: VmHWM on Linux (ru_maxrss there keeps the high-water mark of the
    process that forked us across exec), else getrusage."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 3)
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0, 3)


def measure(args):
    import numpy as np

    result = {"harness_version": HARNESS_VERSION, "ok": True, "model": os.path.basename(args.model),
              "python": platform.python_version(), "numpy": np.__version__,
              "machine": platform.machine(), "threads": args.threads, "warmup_runs": args.warmup,
              "duration_s": args.duration, "governor": read_governor()}
    result["affinity"] = set_affinity(args.affinity) if args.affinity else None
    result["thermal_before"] = read_temperatures()
    start = time.perf_counter()
    model = load_model(args.model, args.threads, args.runtime)
    loaded = time.perf_counter()
    specs = model.specs("inputs")
    samples = file_feeds(np, specs, args.inputs) if args.inputs else [random_feeds(np, specs, args.seed)]
    if not samples:
        raise HarnessError("inputs %s hold no samples" % args.inputs, 2)
    model.bind(samples[0])
    first_start = time.perf_counter()
    model.infer()
    first_end = time.perf_counter()
    result.update(runtime=model.runtime, inputs=specs, outputs=model.specs("outputs"),
                  load_ms=round((loaded - start) * 1e3, 4),
                  first_inference_ms=round((first_end - first_start) * 1e3, 4),
                  cold_start_ms=round((loaded - start + first_end - first_start) * 1e3, 4))
    if args.outputs:
        result["samples"] = save_outputs(np, model, samples, dequantized_outputs(np, model),
                                         args.outputs)
    for _ in range(args.warmup):
        model.infer()
    latencies, stamps = [], []
    clock = time.perf_counter
    t0 = clock()
    deadline = t0 + args.duration if args.duration else None
    while True:
        begin = clock()  # one reading decides whether to run and stamps the run
        if (begin >= deadline) if deadline else (len(latencies) >= args.runs):
            break
        model.infer()
        end = clock()
        latencies.append(round((end - begin) * 1e3, 4))
        stamps.append(int((begin - t0) * 1e7) / 1e7)  # truncated: a stamp never reaches the deadline
    result.update(latencies_ms=latencies, timestamps_s=stamps, wall_s=round(clock() - t0, 6),
                  peak_rss_mb=peak_rss_mb(), thermal_after=read_temperatures(),
                  outputs_file=os.path.basename(args.outputs) if args.outputs else None)
    return result


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="harness.py", description="edgekit on-device benchmark")
    parser.add_argument("model")
    parser.add_argument("--runtime", default="auto",
                        choices=["auto", "ai_edge_litert", "tflite_runtime", "onnxruntime"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--duration", type=float, default=None, help="seconds (sustained mode)")
    parser.add_argument("--affinity", default=None, help="hex CPU mask, as taskset takes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inputs", default=None)
    parser.add_argument("--outputs", default=None)
    parser.add_argument("--result", default=None)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or (args.threads is not None and args.threads < 1):
        parser.error("--runs must be >= 1, --warmup >= 0, --threads >= 1")
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be > 0")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result, code = measure(args), 0
    except HarnessError as err:
        result, code = {"harness_version": HARNESS_VERSION, "ok": False, "error": str(err)}, err.code
    except Exception as err:  # the runtime's own failure: report it as one line, keep going
        lines = str(err).strip().splitlines()
        message = "%s: %s" % (type(err).__name__, lines[-1] if lines else "")
        result, code = {"harness_version": HARNESS_VERSION, "ok": False, "error": message}, 3
    text = json.dumps(result, sort_keys=True)
    if args.result:
        with open(args.result, "w") as handle:
            handle.write(text + "\n")
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
