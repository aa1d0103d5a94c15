"""Benchmark: edgekit against the raw libraries it wraps, measured in one run.

    python -m scripts.bench [--quick] [--out bench-out/bench.json] [--keep DIR] [--skip-onnx]
    python -m scripts.bench --render bench-out/bench.json      # re-print the table of a saved run

Models (built here, nothing downloaded): keras MobileNetV2(weights=None) at 224x224 (96x96 with
--quick; logits output and BatchNorm statistics re-estimated on synthetic images, else its
activations vanish and INT8 quality is unmeasurable: see bench_data.save_mobilenet) and the digits
CNN of scripts/models/make_models.py (trained on sklearn's digits). Calibration
images for MobileNetV2 are seeded synthetic PNGs (scripts/bench/data.py) in a temporary
directory; digits use calibration_data/digits. Sections, each measured in this run:

- TFLite: `edgekit compress` (the CLI, a subprocess, cold cache) vs a subprocess running
  tf.lite.TFLiteConverter for FP32 + full-integer INT8 on the same calibration files (edgekit's
  split.json), both timed from process start. edgekit's time is split by its progress steps;
  "same work" drops the steps the raw side does not do (float reference, validation, report).
  Size ratio, INT8/FP32 latency (ai_edge_litert, 1 thread, interleaved rounds, medians) and, on
  digits, accuracy drop (all 400 held-out digits, and edgekit's own report).
- Cache: cold compress vs an unchanged rebuild through the CLI (EDGEKIT_CACHE_DIR = temp dir).
- Memory: peak RSS of `edgekit compress --no-cache` with N1 vs N2 calibration samples, summed
  over the whole process tree (the CLI and its worker, sampled every 20 ms), and the largest
  single process (its kernel-tracked VmHWM).
- ONNX: MobileNetV2 exported with edgekit's tf2onnx export; edgekit's build_onnx_artifacts vs
  onnxruntime quantize_static with default settings, same calibration files; each in a child
  process (wall time and peak RSS); latency in onnxruntime (1 thread), size, top-1 agreement
  and SQNR against the FP32 model on held-out images.

Targets are printed beside the numbers as PASS/MISS; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from scripts.bench import data as bench_data
from scripts.bench.children import CHILDREN  # the jobs run by `--child`
from scripts.bench.inference import agreement, measure_models, median_of, onnx_runner, tflite_runner
from scripts.bench.measure import NOT_IN_RAW, child, python_env, run_measured, stage_times
from scripts.bench.table import LATENCY_MARGIN, build_rows, render_markdown, summary


@dataclass(frozen=True)
class Config:
    """Sizes of one benchmark mode."""

    mode: str
    mobilenet_size: int
    calibration: int  # MobileNetV2 calibration samples (TFLite and ONNX)
    memory_samples: tuple[int, int]
    heldout: int  # MobileNetV2 held-out images for agreement / SQNR
    repeats: int  # MobileNetV2 compress/raw runs (medians)
    latency_rounds: int
    latency_runs: int
    digits_repeats: int = 3
    validation_samples: int = 16  # edgekit's MobileNetV2 validation, kept small
    validation_runs: int = 10


FULL = Config("full", 224, 300, (100, 1000), 64, 1, 15, 10)
QUICK = Config("quick", 96, 64, (100, 400), 24, 1, 9, 10, digits_repeats=2)


# ----------------------------------------------------------------------------- sections
def write_recipe(path: Path, source: Path, size: int, color: str, scale: float, offset: float, *,
                 num_samples: int, validation_fraction: float, max_validation: int, runs: int, warmup: int,
                 per_channel: bool = True) -> Path:
    import yaml

    recipe = {"name": "bench", "precisions": ["fp32", "int8"],
              "preprocess": {"resize": [size, size], "scale": scale, "offset": offset, "color": color},
              "calibration": {"source": str(source), "num_samples": num_samples,
                              "validation_fraction": validation_fraction, "max_validation_samples": max_validation},
              "validation": {"threads": 1, "runs": runs, "warmup_runs": warmup}}
    if not per_channel:
        recipe["int8"] = {"per_channel": False}
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def compress_argv(model: Path, recipe: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "edgekit", "compress", str(model), "--recipe", str(recipe), "--out", str(out), *extra]


def bench_tflite(name: str, model: Path, data: Path, pre: dict, recipe_opts: dict, cfg: Config, work: Path,
                 env: dict, heldout: list[np.ndarray], labelled: dict | None, repeats: int,
                 per_tensor: bool = False) -> dict:
    """edgekit compress vs raw TFLiteConverter on one model; sizes, latency, accuracy. With
    `per_tensor`, one more edgekit run with per-tensor weights (`int8.per_channel: false`)."""
    folder = work / name
    folder.mkdir()
    recipe = write_recipe(folder / "recipe.yaml", data, pre["size"][0], pre["color"], pre["scale"], pre["offset"],
                          **recipe_opts)
    edgekit_runs, raw_runs, raw_results = [], [], []
    for i in range(repeats):  # cold every time: a fresh cache directory per run
        run_env = dict(env, EDGEKIT_CACHE_DIR=str(folder / f"cache{i}"))
        measured = run_measured(compress_argv(model, recipe, folder / f"edgekit{i}"), run_env)
        if measured.rc != 0:
            raise RuntimeError(f"edgekit compress exited {measured.rc}: {measured.tail()}")
        edgekit_runs.append(measured)
        split = json.loads((folder / f"edgekit{i}" / "split.json").read_text())
        raw_dir = folder / f"raw{i}"
        raw_dir.mkdir()
        job = {"saved_model": str(model), "files": [str(data / key) for key in split["calibration"]],
               "out_dir": str(raw_dir), **pre}
        result, measured_raw = child("raw-tflite", job, folder, env)
        raw_runs.append(measured_raw)
        raw_results.append(result)
    stages = [stage_times(m.lines, m.wall_s) for m in edgekit_runs]
    ek_out, raw_out = folder / "edgekit0", folder / "raw0"
    report = json.loads((ek_out / "report.json").read_text())
    paths = {"edgekit_fp32": ek_out / "model_fp32.tflite", "edgekit_int8": ek_out / "model_int8.tflite",
             "raw_fp32": raw_out / "raw_fp32.tflite", "raw_int8": raw_out / "raw_int8.tflite"}
    latency, outputs = measure_models({k: tflite_runner(p) for k, p in paths.items()}, heldout, cfg)
    result = {
        "model": str(model.name),
        "input": "x".join(map(str, pre["size"])) + ("x1" if pre["color"] == "grayscale" else "x3"),
        "calibration_samples": report["calibration"]["calibration_samples"],
        "edgekit_validation": {"samples": report["calibration"]["validation_samples"],
                               "runs": recipe_opts["runs"], "warmup": recipe_opts["warmup"]},
        "edgekit": {"wall_s": median_of([m.wall_s for m in edgekit_runs]),
                    "stages_s": {k: median_of([s.get(k, 0.0) for s in stages]) for k in stages[0]},
                    "convert_s": median_of([s.get("convert", 0.0) for s in stages]),
                    "same_work_s": median_of([m.wall_s - sum(s.get(k, 0.0) for k in NOT_IN_RAW)
                                              for m, s in zip(edgekit_runs, stages)]),
                    "runs": len(edgekit_runs)},
        "raw": {"wall_s": median_of([m.wall_s for m in raw_runs]),
                "import_s": median_of([r["import_s"] for r in raw_results]),
                "convert_s": median_of([r["fp32_s"] + r["int8_s"] for r in raw_results]),
                "fp32_s": median_of([r["fp32_s"] for r in raw_results]),
                "int8_s": median_of([r["int8_s"] for r in raw_results]), "runs": len(raw_runs)},
        "bytes": {k: p.stat().st_size for k, p in paths.items()},
        "int8_identical_bytes": paths["edgekit_int8"].read_bytes() == paths["raw_int8"].read_bytes(),
        "latency": latency,
        "report_latency_p50_ms": {a["precision"]: a["latency"]["p50_ms"] for a in report["artifacts"]},
        "heldout": {side: agreement(outputs[f"{side}_fp32"], outputs[f"{side}_int8"]) for side in ("edgekit", "raw")},
    }
    if labelled is not None:
        labels = labelled["labels"]
        acc = {k: round(float(np.mean([int(np.argmax(o)) == y for o, y in zip(v, labels)])) * 100, 3)
               for k, v in outputs.items()}
        int8 = next(a for a in report["artifacts"] if a["precision"] == "int8")
        result["accuracy"] = {
            "samples": len(labels), "percent": acc,
            "drop_pts": {side: round(acc[f"{side}_fp32"] - acc[f"{side}_int8"], 3) for side in ("edgekit", "raw")},
            "report_drop_pts": int8["accuracy"]["accuracy_drop_pts"],
            "report_samples": int8["accuracy"]["samples"]}
    if per_tensor:
        result["per_tensor"] = per_tensor_tflite(model, folder, data, pre, recipe_opts, env, heldout,
                                                 outputs["edgekit_fp32"])
    result.update(recipe=str(recipe), out=str(ek_out), cache_dir=str(folder / "cache0"),
                  cold_s=round(edgekit_runs[0].wall_s, 3))
    return result


def per_tensor_tflite(model: Path, folder: Path, data: Path, pre: dict, recipe_opts: dict, env: dict,
                      heldout: list[np.ndarray], fp32_outputs: list[np.ndarray]) -> dict:
    """Size and held-out quality of edgekit's INT8 with per-tensor weights (the size/accuracy trade)."""
    recipe = write_recipe(folder / "recipe-per-tensor.yaml", data, pre["size"][0], pre["color"], pre["scale"],
                          pre["offset"], per_channel=False, **recipe_opts)
    out = folder / "edgekit-per-tensor"
    measured = run_measured(compress_argv(model, recipe, out), dict(env, EDGEKIT_CACHE_DIR=str(folder / "cache-pt")))
    if measured.rc != 0:
        raise RuntimeError(f"per-tensor compress exited {measured.rc}: {measured.tail()}")
    return per_tensor_result(out / "model_int8.tflite", out / "model_fp32.tflite", tflite_runner, heldout,
                             fp32_outputs)


def per_tensor_result(int8: Path, fp32: Path, make_runner, heldout: list[np.ndarray],
                      fp32_outputs: list[np.ndarray]) -> dict:
    """Both sizes, and the INT8 model's agreement/SQNR against the FP32 outputs on held-out inputs."""
    run = make_runner(int8)
    return {"int8_bytes": int8.stat().st_size, "fp32_bytes": fp32.stat().st_size,
            "heldout": agreement(fp32_outputs, [run(feed) for feed in heldout])}


def bench_cache(model: Path, recipe: Path, out: Path, cache_dir: Path, cold_s: float, env: dict,
                repeats: int = 3) -> dict:
    """Unchanged rebuilds through the CLI, into the output and cache of a cold comparison run."""
    digest = (out / "model_int8.tflite").read_bytes()
    cache_env = dict(env, EDGEKIT_CACHE_DIR=str(cache_dir))
    rebuilds = [run_measured(compress_argv(model, recipe, out), cache_env) for _ in range(repeats)]
    bad = [m for m in rebuilds if m.rc != 0]
    if bad:
        raise RuntimeError(f"rebuild exited {bad[0].rc}: {bad[0].tail()}")
    return {"cold_s": cold_s, "rebuild_s": median_of([m.wall_s for m in rebuilds]),
            "runs": [{"wall_s": round(m.wall_s, 3), "hit": "from the cache" in m.stdout} for m in rebuilds],
            "hit": all("from the cache" in m.stdout for m in rebuilds),
            "identical": (out / "model_int8.tflite").read_bytes() == digest}


def bench_memory(model: Path, images: list[Path], pre: dict, cfg: Config, work: Path, env: dict) -> dict:
    """Peak RSS of compress --no-cache with each calibration sample count (same validation set)."""
    fraction, runs = 0.05, []
    for count in cfg.memory_samples:
        data = work / f"memory-{count}"
        data.mkdir()
        for path in images[: math.ceil(count / (1 - fraction) * 1.15) + 10]:
            os.link(path, data / path.name)
        recipe = write_recipe(work / f"memory-{count}.yaml", data, pre["size"][0], pre["color"], pre["scale"],
                              pre["offset"], num_samples=count, validation_fraction=fraction, max_validation=8,
                              runs=5, warmup=1)
        measured = run_measured(compress_argv(model, recipe, work / f"memory-{count}-out", "--no-cache"), env)
        if measured.rc != 0:
            raise RuntimeError(f"compress with {count} samples exited {measured.rc}: {measured.tail()}")
        report = json.loads((work / f"memory-{count}-out" / "report.json").read_text())
        runs.append({"requested": count, "calibration_samples": report["calibration"]["calibration_samples"],
                     "tree_peak_mb": round(measured.tree_peak_mb, 1),
                     "max_process_mb": round(measured.max_process_mb, 1), "wall_s": round(measured.wall_s, 2)})
    return {"runs": runs, "tree_ratio": round(runs[1]["tree_peak_mb"] / runs[0]["tree_peak_mb"], 3),
            "process_ratio": round(runs[1]["max_process_mb"] / runs[0]["max_process_mb"], 3)}


def bench_onnx(saved_model: Path, files: list[str], heldout: list[np.ndarray], pre: dict, cfg: Config,
               work: Path, env: dict) -> dict:
    """edgekit's ONNX INT8 vs onnxruntime quantize_static defaults, from the same exported model."""
    from edgekit.sources.tf2onnx_export import export_to_onnx
    from edgekit.backends.onnx.quantize import model_inputs

    folder = work / "onnx"
    folder.mkdir()
    t = time.perf_counter()
    exported = folder / "mobilenet_v2.onnx"
    export_info = export_to_onnx(saved_model, exported)
    export_s = time.perf_counter() - t
    job = {"onnx": str(exported), "files": files, "input": next(iter(model_inputs(exported))), **pre}
    sides = {}
    for side, kind in (("edgekit", "onnx-edgekit"), ("raw", "onnx-raw")):
        out = folder / side
        out.mkdir()
        result, measured = child(kind, dict(job, out_dir=str(out)), folder, env)
        sides[side] = {"work_s": round(result["work_s"], 3), "process_wall_s": round(measured.wall_s, 3),
                       "tree_peak_mb": round(measured.tree_peak_mb, 1), "paths": result["paths"]}
    paths = {"fp32": exported, "edgekit_fp32": Path(sides["edgekit"]["paths"]["fp32"]),
             "edgekit_int8": Path(sides["edgekit"]["paths"]["int8"]), "raw_int8": Path(sides["raw"]["paths"]["int8"])}
    latency, outputs = measure_models({k: onnx_runner(p) for k, p in paths.items()}, heldout, cfg)
    (folder / "edgekit-per-tensor").mkdir()
    built, _ = child("onnx-edgekit", dict(job, out_dir=str(folder / "edgekit-per-tensor"), per_channel=False),
                     folder, env)
    per_tensor = per_tensor_result(Path(built["paths"]["int8"]), Path(built["paths"]["fp32"]), onnx_runner,
                                   heldout, outputs["fp32"])
    for side in sides:
        sides[side].update(agreement(outputs["fp32"], outputs[f"{side}_int8"]),
                           int8_bytes=paths[f"{side}_int8"].stat().st_size)
    sides["edgekit"]["fp32_bytes"] = paths["edgekit_fp32"].stat().st_size
    sides["raw"]["fp32_bytes"] = exported.stat().st_size
    fused_error = agreement(outputs["fp32"], outputs["edgekit_fp32"])
    return {"export_s": round(export_s, 3), "opset": export_info["opset"], "calibration_samples": len(files),
            "heldout_samples": len(heldout), "latency": latency, "edgekit": sides["edgekit"], "raw": sides["raw"],
            "edgekit_fp32_vs_exported": fused_error, "per_tensor": per_tensor}


# ----------------------------------------------------------------------------- table
def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in ("edgekit", "tensorflow-cpu", "ai-edge-litert", "onnxruntime", "onnx", "tf2onnx"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return found


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _section(results: dict, path: tuple[str, ...], func, started: float):
    """Run one section; a failure is recorded as {"error": ...} and the run goes on."""
    label = ".".join(path)
    print(f"[{time.perf_counter() - started:6.0f}s] {label} ...", file=sys.stderr, flush=True)
    target = results
    for key in path[:-1]:
        target = target.setdefault(key, {})
    try:
        target[path[-1]] = func()
    except Exception as err:  # a section's failure is reported in the table, not fatal
        target[path[-1]] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"}
    return target[path[-1]]


def run(cfg: Config, work: Path, skip_onnx: bool) -> dict:
    """Every section of the benchmark in `work`; returns the results dict."""
    started = time.perf_counter()
    env = python_env()
    results = {"meta": {"mode": cfg.mode, "config": asdict(cfg), "cpu": _cpu(), "cpus": os.cpu_count(),
                        "loadavg_start": [round(x, 2) for x in os.getloadavg()], "versions": _versions(),
                        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "latency_margin": LATENCY_MARGIN,
                        "mobilenet": "keras MobileNetV2(weights=None, classifier_activation=None), BatchNorm "
                                     "statistics re-estimated on 16 synthetic images"}}
    digits = bench_data.save_digits(work / "digits-model")
    size = cfg.mobilenet_size
    mobilenet = bench_data.save_mobilenet(work / "mobilenet-model", size)
    mobile_pre = {"size": [size, size], "color": "rgb", "scale": 2 / 255, "offset": -1.0}
    digits_pre = {"size": [8, 8], "color": "grayscale", "scale": 1 / 255, "offset": 0.0}
    pool_count = math.ceil(max(cfg.memory_samples[1] / 0.95, cfg.calibration / 0.9) * 1.15) + 10
    pool = bench_data.write_images(work / "pool", pool_count, size, seed=0)
    mobile_data = work / "mobilenet-calibration"
    mobile_data.mkdir()
    for path in pool[: math.ceil(cfg.calibration / 0.9 * 1.15) + 10]:
        os.link(path, mobile_data / path.name)
    heldout = [bench_data.load_image(p, (size, size), "rgb", 2 / 255, -1.0)
               for p in bench_data.write_images(work / "heldout", cfg.heldout, size, seed=1)]
    digit_labels = bench_data.read_labels(bench_data.DIGITS_DATA)
    digit_names = sorted(digit_labels)
    digit_feeds = [bench_data.load_image(bench_data.DIGITS_DATA / n, (8, 8), "grayscale", 1 / 255, 0.0)
                   for n in digit_names]
    labelled = {"labels": [digit_labels[n] for n in digit_names]}
    results["meta"]["setup_s"] = round(time.perf_counter() - started, 1)

    _section(results, ("tflite", "digits"), lambda: bench_tflite(
        "digits", digits["savedmodel"], bench_data.DIGITS_DATA, digits_pre,
        dict(num_samples=300, validation_fraction=0.25, max_validation=500, runs=50, warmup=10),
        cfg, work, env, digit_feeds, labelled, cfg.digits_repeats), started)
    mobile = _section(results, ("tflite", "mobilenet_v2"), lambda: bench_tflite(
        "mobilenet_v2", mobilenet["savedmodel"], mobile_data, mobile_pre,
        dict(num_samples=cfg.calibration, validation_fraction=0.1, max_validation=cfg.validation_samples,
             runs=cfg.validation_runs, warmup=2), cfg, work, env, heldout, None, cfg.repeats, per_tensor=True),
        started)
    if "error" not in mobile:
        _section(results, ("cache",), lambda: bench_cache(
            mobilenet["savedmodel"], Path(mobile["recipe"]), Path(mobile["out"]), Path(mobile["cache_dir"]),
            mobile["cold_s"], env), started)
    _section(results, ("memory",), lambda: bench_memory(mobilenet["savedmodel"], pool, mobile_pre, cfg, work, env),
             started)
    if not skip_onnx and "error" not in mobile:
        split = json.loads((Path(mobile["out"]) / "split.json").read_text())
        files = [str(mobile_data / key) for key in split["calibration"]]
        _section(results, ("onnx",), lambda: bench_onnx(mobilenet["savedmodel"], files, heldout, mobile_pre, cfg,
                                                         work, env), started)
    results["meta"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["meta"]["wall_s"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="MobileNetV2 at 96x96, fewer samples (< 5 min)")
    parser.add_argument("--out", type=Path, default=Path("bench-out/bench.json"),
                        help="results JSON, a .md table beside it [bench-out/bench.json]")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temp dir, removed)")
    parser.add_argument("--skip-onnx", action="store_true", help="leave out the ONNX section")
    parser.add_argument("--render", type=Path, help="print the table of a saved results JSON and exit")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "JOB", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, job, result = args.child
        Path(result).write_text(json.dumps(CHILDREN[kind](json.loads(Path(job).read_text()))))
        return 0
    if args.render:
        results = json.loads(args.render.read_text())
        print(summary(results) + "\n\n" + render_markdown(build_rows(results)))
        return 0
    cfg = QUICK if args.quick else FULL
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="edgekit-bench-", dir=args.keep))
    else:
        work = Path(tempfile.mkdtemp(prefix="edgekit-bench-"))
    try:
        results = run(cfg, work, args.skip_onnx)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    table = render_markdown(build_rows(results))
    args.out.with_suffix(".md").write_text(summary(results) + "\n\n" + table + "\n")
    print(summary(results) + "\n\n" + table)
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
