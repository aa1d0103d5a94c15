"""Benchmark: plain INT8 vs INT8 with float fallback vs FP32, on an INT8-hostile model, on
MobileNetV3-Small (weights=None, 96x96) and on a real pretrained MobileNetV3 (PaddleOCR's text
direction classifier, ONNX from paddle2onnx, through the CLI; skipped when rapidocr-onnxruntime,
which ships it, is not installed).

    python -m scripts.bench.fallback [--out FILE.json] [--targets tflite,onnx] [--skip-mobilenet]
                                     [--skip-hostile] [--skip-paddle] [--time-budget SECONDS]
    python -m scripts.bench.fallback --ladder-only [--skip-old] [--jobs N]   # the classifier: old vs new search time

`--ladder-only` runs PaddleOCR's classifier search twice on the same 600 rendered lines and budget
(top-1 agreement >= 0.99): the old float fallback (one onnxruntime quantization per candidate)
and the precision ladder (one quantization, candidates by QDQ graph edits), and prints both times;
`--jobs N` (default 0 or 1: serial) measures the ladder's independent candidates in N lanes, this
process and N - 1 worker processes, as `compress --jobs N` does (`edgekit.executor.LazyExecutor`),
the load average printed beside the time.

The hostile model (scripts/models/hostile.py) is the digits CNN of make_models.py with a planted pair of 1x1 convs,
`outlier_up` (channel 0 times OUTLIER_GAIN) and `outlier_down` (its inverse): the float model is
unchanged, but the tensor between them holds one channel OUTLIER_GAIN times larger than the
others, so its per-tensor INT8 scale flattens every other channel. Trained on sklearn's digits.
Rows: accuracy (digits labels) or agreement/SQNR (MobileNet, random weights and inputs), float
layers, size and host latency (1 thread) of each artifact.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _mobilenet(out_dir: Path) -> Path:
    """keras MobileNetV3Small(weights=None, 96x96, logits out) saved as .keras (random weights:
    agreement/SQNR only; logits, because an untrained softmax over 1000 classes is ~uniform and
    its INT8 output grid of 1/256 makes every SQNR meaningless)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV3Small(input_shape=(96, 96, 3), weights=None, include_preprocessing=False,
                                                   classifier_activation=None)
    path = out_dir / "mobilenet_v3_small.keras"
    model.save(path)
    return path


def _random_images(out_dir: Path, count: int = 160) -> Path:
    """Seeded random 96x96x3 float samples in [-1, 1] as one .npy (no labels)."""
    data = out_dir / "mnv3_data"
    data.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    np.save(data / "samples.npy", rng.uniform(-1, 1, (count, 96, 96, 3)).astype(np.float32))
    return data


def bench_model(name: str, model_path: Path, recipe, budget, target: str, max_float_layers: int,
                time_budget_s: float) -> dict:
    """One row: FP32 vs plain INT8 vs fallback INT8 (metrics, float layers, size, p50 latency)."""
    from edgekit import backends, sources
    from edgekit.backends.base import BuildContext
    from edgekit.calibration.dataset import load_dataset
    from edgekit.debug.fallback import run_fallback
    from edgekit.debug.scoring import Evaluator
    from edgekit.model.checks import check_model_path

    work = Path(tempfile.mkdtemp(prefix="bench-fallback-"))
    source = sources.prepare(check_model_path(model_path), work, {}, False)
    data = load_dataset(recipe, source.inputs)
    reference = source.reference
    # the same selective builder compress's fallback and `edgekit debug` search with
    backend = backends.get(target).selective(source, data.calibration_factory(), recipe, BuildContext(work, work))
    if target == "tflite":
        from edgekit.backends.tflite.build import build_tflite

        fp32 = build_tflite(source.saved_dir, "fp32")
    else:
        fp32 = backend.fp32_path.read_bytes()
    evaluator = Evaluator(data.validation_feeds, [reference(f) for f in data.validation_feeds], data.labels,
                          runs=50, warmup_runs=10)
    start = time.perf_counter()
    result = run_fallback(backend, evaluator, budget, max_float_layers=max_float_layers, time_budget_s=time_budget_s)
    seconds = time.perf_counter() - start
    fp32_latency = evaluator.latency(backend, fp32).p50_ms
    plain, final = result.steps[0], result.best
    backend.close()

    def row(kind, step, size, latency):
        return _row(name, target, kind, step, size, latency, len(fp32), fp32_latency)

    return {"rows": [row("fp32", None, len(fp32), fp32_latency),
                     row("int8 plain", plain.to_dict(), plain.bytes, plain.latency_p50_ms),
                     row("int8 fallback", final.to_dict(), final.bytes, final.latency_p50_ms)],
            "met": result.met, "float_layers": final.float_layers, "search_s": round(seconds, 2),
            "steps": len(result.steps), "budget": budget.describe()}


def _row(name, target, kind, step, size, latency, fp32_size, fp32_latency) -> dict:
    acc = step["accuracy"] if step else {}
    return {"model": name, "target": target, "artifact": kind,
            "float_layers": len(step["float_nodes"]) if step else None,
            "accuracy_drop_pts": acc.get("accuracy_drop_pts"), "top1_agreement": acc.get("top1_agreement"),
            "sqnr_db": acc.get("sqnr_db"), "bytes": size, "size_ratio": round(size / fp32_size, 4),
            "p50_ms": latency, "latency_ratio": round(latency / fp32_latency, 3)}


def bench_paddle_classifier(work: Path, budget_flags: list[str], time_budget_s: float) -> dict | None:
    """The CLI on PaddleOCR's pretrained text-direction classifier, 600 rendered lines; rows from
    its report's fallback steps."""
    import subprocess

    from scripts.models import text_lines
    models = text_lines.paddle_models()
    if models is None:
        print("rapidocr-onnxruntime is not installed: no PaddleOCR row", file=sys.stderr)
        return None
    data = text_lines.write_text_lines(work / "text_lines", 600)
    out = work / "paddle_cls"
    recipe = work / "paddle_cls.yaml"
    recipe.write_text(f"fallback:\n  time_budget_s: {time_budget_s}\n")
    argv = [sys.executable, "-m", "edgekit", "compress", str(models / text_lines.CLASSIFIER), "--int8",
            "--target", "onnx", "-c", str(data), "--layout", "nchw", "--mean", "0.5,0.5,0.5", "--std",
            "0.5,0.5,0.5", "--recipe", str(recipe), "--no-cache", "--quiet", "--out", str(out), *budget_flags]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 10):
        raise RuntimeError(f"compress exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    fp32, int8 = json.loads((out / "report.json").read_text())["artifacts"]
    fallback = int8["details"]["fallback"]
    steps = fallback["steps"]
    final = next((s for s in reversed(steps) if s["met"] and s["float_layers"] == fallback["float_layers"]),
                 min(steps, key=lambda s: s.get("shortfall") or 0.0))
    name = "PaddleOCR text direction, pretrained MobileNetV3 (paddle2onnx)"
    sizes = (fp32["bytes"], fp32["latency"]["p50_ms"])
    return {"rows": [_row(name, "onnx", "fp32", None, *sizes, *sizes),
                     _row(name, "onnx", "int8 plain", steps[0], steps[0]["bytes"], steps[0]["latency_p50_ms"], *sizes),
                     _row(name, "onnx", "int8 fallback", final, final["bytes"], final["latency_p50_ms"], *sizes)],
            "met": fallback["met"], "float_layers": final["float_layers"], "search_s": round(seconds, 2),
            "steps": len(steps), "budget": fallback["budget"]}


def paddle_classifier_setup(work: Path, count: int = 600):
    """(fp32 fused ONNX path, Dataset, Evaluator) for PaddleOCR's text direction classifier on
    `count` rendered lines, as the CLI prepares it; None when rapidocr-onnxruntime is missing."""
    from edgekit.backends.onnx.artifacts import prepare_fp32
    from edgekit.calibration.dataset import load_dataset
    from edgekit.debug.scoring import Evaluator
    from edgekit.recipe.schema import Recipe
    from edgekit.runtime.base import TensorSpec
    from edgekit.runtime.onnx import OnnxRunner
    from scripts.models import text_lines

    models = text_lines.paddle_models()
    if models is None:
        return None
    lines = text_lines.write_text_lines(work / "ladder_lines", count)
    recipe = Recipe.model_validate({"precisions": ["int8"], "preprocess": {
        "layout": "nchw", "mean": [0.5] * 3, "std": [0.5] * 3}, "calibration": {"source": str(lines)}})
    data = load_dataset(recipe, [TensorSpec("x", (1, 3, 48, 192), np.float32)])
    fp32 = work / "paddle_cls_fp32.onnx"
    prepare_fp32(models / text_lines.CLASSIFIER, fp32, calibration_factory=data.calibration_factory(),
                 input_shapes={"x": [1, 3, 48, 192]})
    reference = OnnxRunner(fp32, 1)
    evaluator = Evaluator(data.validation_feeds, [reference.run(f) for f in data.validation_feeds], data.labels)
    return fp32, data, evaluator


def bench_ladder_vs_fallback(work: Path, budget, time_budget_s: float, old: bool = True, jobs: int = 0) -> dict | None:
    """The classifier's complete search, old (float fallback, one onnxruntime quantization per
    candidate) and new (precision ladder on one quantized graph, its candidates in `jobs` lanes
    when > 1), same data, same budget."""
    import os
    from edgekit.backends.onnx.ladder import OnnxLadder
    from edgekit.backends.onnx.selective import OnnxSelective
    from edgekit.debug.fallback import run_fallback
    from edgekit.debug.ladder import ladder_details, run_ladder

    setup = paddle_classifier_setup(work)
    if setup is None:
        print("rapidocr-onnxruntime is not installed: no ladder row", file=sys.stderr)
        return None
    fp32, data, evaluator = setup
    row = {"budget": budget.describe()}
    if old:
        start = time.perf_counter()
        backend = OnnxSelective(fp32, data.calibration_factory())
        result = run_fallback(backend, evaluator, budget, time_budget_s=time_budget_s)
        row["old"] = {"search_s": round(time.perf_counter() - start, 2), "met": result.met,
                      "builds": len(result.steps), "float_layers": result.float_layers,
                      "accuracy": _headline(result.best.accuracy)}
        backend.close()
    from edgekit.executor import LazyExecutor

    executor = LazyExecutor(jobs) if jobs > 1 else None  # --jobs N as the CLI: this process and N - 1 workers
    start = time.perf_counter()
    backend = OnnxLadder(fp32, data.calibration_factory())
    result, ranking = run_ladder(backend, evaluator, budget, time_budget_s=time_budget_s, executor=executor)
    seconds = time.perf_counter() - start
    if executor is not None:
        executor.close()
    details = ladder_details(backend, evaluator, result, ranking, fp32.read_bytes())
    backend.close()
    row["new"] = {"search_s": round(seconds, 2), "jobs": jobs, "load": [round(x, 2) for x in os.getloadavg()],
                  "met": result.met, "builds": len(result.steps),
                  "int16": sum(v == "int16" for v in result.best.precisions.values()),
                  "float": sum(v == "float" for v in result.best.precisions.values()),
                  "mac_share": details["mac_share"], "latency_p50_ms": details["latency_p50_ms"],
                  "accuracy": _headline(result.best.accuracy), "plain": _headline(result.steps[0].accuracy)}
    return row


def _headline(acc: dict) -> dict:
    return {k: acc.get(k) for k in ("top1_agreement", "sqnr_db", "accuracy_drop_pts") if acc.get(k) is not None}


def print_ladder(row: dict) -> None:
    print(f"\nPaddleOCR text direction classifier, budget {row['budget']}: complete search, old vs new")
    for kind in ("old", "new"):
        if kind in row:
            r = row[kind]
            print(f"{kind:<4} {r['search_s']:>8} s  met={r['met']}  builds {r['builds']}  {r['accuracy']}  "
                  + (f"float layers {r['float_layers']}" if kind == "old" else
                     f"int16 units {r['int16']}, float units {r['float']}, MAC share {r['mac_share']}, "
                     f"p50 ms {r['latency_p50_ms']}, jobs {r['jobs']}, load {r['load']}"))


def print_summary(summary: dict) -> None:
    name, target = summary["rows"][0]["model"], summary["rows"][0]["target"]
    print(f"\n{name} [{target}] budget {summary['budget']}: met={summary['met']} float layers "
          f"{summary['float_layers']} ({summary['steps']} builds, {summary['search_s']} s)")
    print(f"{'artifact':<14} {'float':>5} {'drop pts':>9} {'agree':>7} {'SQNR dB':>8} {'bytes':>9} "
          f"{'size':>6} {'p50 ms':>8} {'lat':>6}")
    for r in summary["rows"]:
        print(f"{r['artifact']:<14} {str(r['float_layers'] or 0):>5} {str(r['accuracy_drop_pts']):>9} "
              f"{str(r['top1_agreement']):>7} {str(r['sqnr_db']):>8} {r['bytes']:>9} {r['size_ratio']:>6} "
              f"{r['p50_ms']:>8} {r['latency_ratio']:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench_fallback.json"))
    parser.add_argument("--skip-mobilenet", action="store_true")
    parser.add_argument("--skip-hostile", action="store_true")
    parser.add_argument("--skip-paddle", action="store_true")
    parser.add_argument("--targets", default="tflite,onnx")
    parser.add_argument("--ladder-only", action="store_true", help="only the classifier's old vs new search")
    parser.add_argument("--skip-old", action="store_true", help="with --ladder-only: the new search alone")
    parser.add_argument("--time-budget", type=float, default=600.0, help="seconds per search [600]")
    parser.add_argument("--jobs", type=int, default=0,
                        help="with --ladder-only: lanes, this process and N - 1 workers [0 or 1: serial]")
    args = parser.parse_args()
    from edgekit.debug.scoring import Budget
    from edgekit.recipe.schema import Recipe
    from scripts.models import DIGITS_DATA
    from scripts.models.hostile import save_hostile

    work = Path(tempfile.mkdtemp(prefix="bench-fallback-"))
    if args.ladder_only:
        row = bench_ladder_vs_fallback(work, Budget(min_agreement=0.99), args.time_budget, old=not args.skip_old,
                                       jobs=args.jobs)
        if row is not None:
            print_ladder(row)
            args.out.write_text(json.dumps(row, indent=2) + "\n")
        return
    digits = Recipe.model_validate({"precisions": ["int8"], "preprocess": {"color": "grayscale"},
                                    "calibration": {"source": str(DIGITS_DATA)}})
    cases = [] if args.skip_hostile else [("hostile digits CNN", save_hostile(work), digits,
                                           Budget(max_accuracy_drop=1.0))]
    if not args.skip_mobilenet:
        mnv3 = Recipe.model_validate({"precisions": ["int8"], "calibration": {
            "source": str(_random_images(work)), "num_samples": 100, "max_validation_samples": 40}})
        cases.append(("MobileNetV3Small 96x96 (weights=None)", _mobilenet(work), mnv3, Budget(min_sqnr_db=25.0)))
    runs = [(lambda name=name, path=path, recipe=recipe, budget=budget, target=target: bench_model(
                name, path, recipe, budget, target, max_float_layers=10, time_budget_s=args.time_budget))
            for name, path, recipe, budget in cases for target in args.targets.split(",")]
    if not args.skip_paddle and "onnx" in args.targets.split(","):
        runs.append(lambda: bench_paddle_classifier(work, ["--min-sqnr", "25"], args.time_budget))
    results = [summary for summary in (run() for run in runs) if summary is not None]
    for summary in results:
        print_summary(summary)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
