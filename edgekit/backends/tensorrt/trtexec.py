"""The TensorRT target: a QDQ model TensorRT accepts, its calibration cache, and the engine build.

- `write_calibration_cache`: TensorRT's text cache ("TRT-<version>-EntropyCalibration2", then one
  `tensor: <hex of the float32 scale bits>` line per activation), for implicit INT8 (older
  JetPack); scales are read from the activation QuantizeLinear nodes of the symmetric QDQ model.
- `trtexec_argv`: the exact trtexec command line for the explicitly quantized QDQ model.
- `trtexec_bench_argv`: the trtexec command line that benchmarks an engine (or builds and
  benchmarks an ONNX model) for `edgekit bench`.
- `build_engine_on_device`: copies the model to a Device (push/run/pull), runs trtexec there,
  fetches the engine, layer info and log, and parses the log. Remote steps all have timeouts.
"""

from __future__ import annotations

import hashlib
import posixpath
import shlex
import struct
from pathlib import Path
from typing import Sequence

from edgekit.errors import DeviceToolError, EdgekitError, condense
from edgekit.fsutil import write_text_atomic
from edgekit.backends.tensorrt.trtexec_log import parse_layer_info_json, parse_trtexec_log

DEFAULT_TRT_VERSION = "8.6.2"  # JetPack 6
TRTEXEC_CANDIDATES = ("trtexec", "/usr/src/tensorrt/bin/trtexec")
BUILD_TIMEOUT_S = 1800.0
STEP_TIMEOUT_S = 120.0


def trt_version_code(version: str) -> int:
    """'8.6.1' -> 8601, '10.3.0' -> 100300: the number TensorRT puts in cache headers."""
    parts = [int(p) for p in (version.split(".") + ["0", "0"])[:3]]
    major, minor, patch = parts
    return major * 10000 + minor * 100 + patch if major >= 10 else major * 1000 + minor * 100 + patch


def activation_scales(qdq_model, fp32_names: set[str] | None = None) -> dict[str, float]:
    """Tensor -> scale of every activation QuantizeLinear (scalar scale, non-constant input).

    With `fp32_names` (the FP32 model's tensor names), tensors the quantizer renamed (graph
    outputs) are mapped back through their DequantizeLinear to the FP32 name; others are dropped.
    """
    from onnx import numpy_helper

    inits = {init.name: init for init in qdq_model.graph.initializer}
    dq_of = {n.input[0]: n.output[0] for n in qdq_model.graph.node if n.op_type == "DequantizeLinear"}
    scales = {}
    for node in qdq_model.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in inits or node.input[1] not in inits:
            continue
        value = numpy_helper.to_array(inits[node.input[1]])
        name = node.input[0]
        if fp32_names is not None and name not in fp32_names:
            name = dq_of.get(node.output[0], "")
            if name not in fp32_names:
                continue
        if value.size == 1:
            scales[name] = float(value.reshape(()))
    return scales


def calibration_cache_text(scales: dict[str, float], version: str = DEFAULT_TRT_VERSION) -> str:
    """TensorRT's calibration cache text for `scales` (scale = amax / 127)."""
    lines = [f"TRT-{trt_version_code(version)}-EntropyCalibration2"]
    for name in sorted(scales):
        bits = struct.unpack(">I", struct.pack(">f", scales[name]))[0]
        lines.append(f"{name}: {bits:08x}")
    return "\n".join(lines) + "\n"


def write_calibration_cache(
    qdq_model, path: str | Path, *, fp32_model=None, version: str = DEFAULT_TRT_VERSION
) -> int:
    """Write the cache for a symmetric QDQ model (names as in `fp32_model`); return its size."""
    names = None
    if fp32_model is not None:
        graph = fp32_model.graph
        names = {i.name for i in graph.input} | {o for n in graph.node for o in n.output}
    scales = activation_scales(qdq_model, names)
    write_text_atomic(path, calibration_cache_text(scales, version))
    return len(scales)


def trtexec_argv(
    onnx_path: str,
    engine_path: str,
    *,
    timing_cache: str,
    layer_info: str | None = None,
    fp16: bool = True,
    calib_cache: str | None = None,
    trtexec: str = "trtexec",
) -> list[str]:
    """trtexec argv building an INT8 engine from a QDQ ONNX (FP16 allowed for unquantized layers).

    With `calib_cache`, the model is taken as FP32 and INT8 scales come from the cache instead
    (implicit quantization, for TensorRT before explicit QDQ support or older JetPack).
    """
    argv = [trtexec, f"--onnx={onnx_path}", "--int8"]
    if fp16:
        argv.append("--fp16")
    if calib_cache:
        argv.append(f"--calib={calib_cache}")
    argv += [f"--saveEngine={engine_path}", f"--timingCacheFile={timing_cache}"]
    if layer_info:
        argv += ["--profilingVerbosity=detailed", f"--exportLayerInfo={layer_info}"]
    return argv


def trtexec_bench_argv(
    trtexec: str,
    *,
    engine: str | None = None,
    onnx: str | None = None,
    precision: str = "fp32",
    iterations: int = 50,
    duration_s: float | None = None,
    warmup_ms: int = 200,
    timing_cache: str | None = None,
) -> list[str]:
    """trtexec argv that benchmarks a serialized engine (`engine`) or builds one from `onnx` and
    benchmarks it in the same run.

    Exactly `iterations` timed queries (`--duration=0`), or in sustained mode every query for
    `duration_s` seconds (`--iterations=1 --duration=S`); warm-up is by time (`--warmUp`, ms,
    trtexec's default 200). ONNX builds: int8 -> `--int8 --fp16` (explicit QDQ, FP16 for the
    unquantized layers), fp16 -> `--fp16`, fp32 -> neither.
    """
    if (engine is None) == (onnx is None):
        raise ValueError("give exactly one of engine / onnx")
    argv = [trtexec]
    if engine is not None:
        argv.append(f"--loadEngine={engine}")
    else:
        argv.append(f"--onnx={onnx}")
        argv += {"int8": ["--int8", "--fp16"], "fp16": ["--fp16"]}.get(precision, [])
        if timing_cache:
            argv.append(f"--timingCacheFile={timing_cache}")
    if duration_s:
        argv += ["--iterations=1", f"--duration={max(1, round(duration_s))}"]
    else:
        argv += [f"--iterations={iterations}", "--duration=0"]
    argv.append(f"--warmUp={warmup_ms}")
    return argv


def command_line(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def _find_trtexec(device, configured: str | None = None) -> str:
    for candidate in (configured,) if configured else TRTEXEC_CANDIDATES:
        probe = ["sh", "-c", 'command -v "$1"', "sh", candidate] if "/" not in candidate else ["test", "-x", candidate]
        result = device.run(probe, timeout=STEP_TIMEOUT_S, check=False)
        if result.returncode == 0:
            found = result.stdout.strip().splitlines()
            return found[-1] if found and "/" not in candidate else candidate
    raise DeviceToolError(f"trtexec not found on the device (looked for "
                          f"{configured or ', '.join(TRTEXEC_CANDIDATES)})",
                          getattr(device, "name", None))  # fmt: skip


def last_errors(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "[E]" in line or "error" in line.lower()] or lines
    return condense(" | ".join(errors[-count:]), 500) or "no output"


def build_engine_on_device(
    device, onnx_path: str | Path, out_dir: str | Path, *, fp16: bool = True, timeout: float = BUILD_TIMEOUT_S,
    trtexec: str | None = None,
) -> dict:
    """Build `<stem>.plan` with trtexec on `device`; fetch it, its log and layer info into out_dir.

    trtexec: its path on the device (the inventory's `trtexec`), default: looked up on PATH and
    in /usr/src/tensorrt/bin. Returns {"built": True, "engine", "log", "command", "trtexec": parsed
    log dict}. A missing or failing trtexec raises DeviceToolError with its last error lines.
    """
    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:12]
    remote = posixpath.join(device.workdir, f"edgekit-trt-{digest}")
    stem = onnx_path.stem
    names = {"onnx": onnx_path.name, "engine": f"{stem}.plan", "cache": "timing.cache",
             "layers": f"{stem}.layers.json", "log": f"{stem}.trtexec.log"}  # fmt: skip
    rpath = {key: posixpath.join(remote, name) for key, name in names.items()}
    trtexec = _find_trtexec(device, trtexec)
    device.run(["mkdir", "-p", remote], timeout=STEP_TIMEOUT_S)
    device.push(str(onnx_path), rpath["onnx"], timeout=STEP_TIMEOUT_S)
    argv = trtexec_argv(rpath["onnx"], rpath["engine"], timing_cache=rpath["cache"], layer_info=rpath["layers"],
                        fp16=fp16, trtexec=trtexec)  # fmt: skip
    result = device.run(argv, timeout=timeout, check=False)
    log_text = result.stdout + ("\n" + result.stderr if result.stderr else "")
    write_text_atomic(out_dir / names["log"], log_text)
    if result.returncode != 0:
        raise DeviceToolError(f"trtexec failed (exit {result.returncode}): {last_errors(log_text)}",
                              getattr(device, "name", None))  # fmt: skip
    device.pull(rpath["engine"], str(out_dir / names["engine"]), timeout=STEP_TIMEOUT_S)
    report = parse_trtexec_log(log_text)
    layer_info: str | None = names["layers"]
    try:
        device.pull(rpath["layers"], str(out_dir / names["layers"]), timeout=STEP_TIMEOUT_S)
        report.layer_precisions.update(parse_layer_info_json((out_dir / names["layers"]).read_text()))
    except (EdgekitError, OSError, ValueError) as err:  # trtexec before 8.2 writes no layer info
        layer_info = f"not available ({err})"
    return {
        "layer_info": layer_info,
        "built": True,
        "engine": names["engine"],
        "log": names["log"],
        "command": command_line(argv),
        "trtexec": report.to_dict(),
    }
