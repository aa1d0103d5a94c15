"""Benchmark: serial vs the local process pool, in one run (not a timed test).

    python -m scripts.bench.executor [--jobs 2] [--models 8] [--skip-fleet] [--skip-sensitivity]

1. `edgekit batch` on a fleet of 8 tiny Keras models, then of 8 small ones (MobileNetV3Small at
   96x96; INT8 with .npy calibration, no devices): a pool of 1 worker (serial: one build after
   another, as `compress` runs them) vs `--jobs N`. Each worker's start-up (TensorFlow import, 5 to
   7 s) and the fleet report are fixed costs; tiny builds (about 1 s) cannot amortize them.
2. The sensitivity ranking (`measure_sensitivity`: both passes, the first 32 held-out samples, as
   the fallback search runs it) of the INT8-hostile digits CNN (scripts/models/hostile.py):
   in-process serial vs N lanes (this process and N - 1 pool workers, as `--jobs N` runs it), cold
   (the workers import TensorFlow and calibrate their own backend while this process measures
   alone) and warm (later rankings with the same workers; serial and warm are the medians of
   REPEATS (5) interleaved runs); the rankings must be identical. The caller's own calibrated
   backend is opened once before both and timed apart.
Targets: pool <= 0.6x serial on 2 cores. Prints the machine's load average before and after, since
the cores may be shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPEATS = 5


def bench_fleet(work: Path, count: int, jobs: int, small: bool = False) -> dict:
    from edgekit.executor.pool import PoolExecutor
    from edgekit.fleet.run import run_fleet
    from scripts.models.fleet import write_fleet

    fleet = write_fleet(work, count, small=small)
    seconds = {}
    for label, width in (("serial", 1), ("pool", jobs)):
        start = time.perf_counter()
        done = []

        def on_step(step, done=done, start=start):
            if step.endswith(": done") or step == "writing the fleet report":
                done.append(time.perf_counter() - start)

        with PoolExecutor(width) as pool:
            document = run_fleet(fleet, work / label, pool, use_cache=False, on_step=on_step)
        seconds[label] = time.perf_counter() - start
        seconds[f"{label} first build"], seconds[f"{label} report"] = done[0], seconds[label] - done[-1]
        assert all(m["status"] == "ok" for m in document["models"]), document
    return seconds


def bench_sensitivity(work: Path, jobs: int) -> dict:
    from edgekit.backends.tflite.selective import TfliteSelective
    from edgekit.calibration.dataset import load_dataset
    from edgekit.debug.fallback import SENSITIVITY_SAMPLES
    from edgekit.debug.parallel import OnExecutor, TfliteSession
    from edgekit.debug.scoring import Evaluator
    from edgekit.debug.sensitivity import measure_sensitivity, serial
    from edgekit.executor.pool import PoolExecutor
    from edgekit.model.checks import check_model_path
    from edgekit.recipe.schema import Recipe
    from edgekit.sources.tensorflow import export_fixed_savedmodel, keras_layer_names, reference_fn
    from scripts.models import DIGITS_DATA
    from scripts.models.hostile import save_hostile

    model = save_hostile(work)
    recipe = Recipe.model_validate({"precisions": ["int8"], "preprocess": {"color": "grayscale"},
                                    "calibration": {"source": str(DIGITS_DATA)}})
    exported = export_fixed_savedmodel(check_model_path(model), work, {})
    data = load_dataset(recipe, exported.inputs)
    reference = reference_fn(exported.saved_dir)
    evaluator = Evaluator(data.validation_feeds, [reference(f) for f in data.validation_feeds],
                          data.labels).subset(SENSITIVITY_SAMPLES)
    names = keras_layer_names(model)
    calibration = list(data.calibration_factory()())
    start = time.perf_counter()
    backend = TfliteSelective(exported.saved_dir, lambda: iter(calibration), recipe.int8, names)
    seconds = {"calibration": [time.perf_counter() - start]}  # the caller's own backend: the same either way

    def ranking(label, evaluate=None):
        start = time.perf_counter()
        ranked, _ = measure_sensitivity(backend, evaluator, evaluate_many=evaluate)
        seconds.setdefault(label, []).append(time.perf_counter() - start)
        return [(r.node, r.score) for r in ranked]

    try:
        alone = ranking("serial")
        session = TfliteSession(str(exported.saved_dir), calibration, evaluator, recipe.int8, tuple(names))
        local = serial(backend, evaluator)
        with PoolExecutor(jobs - 1) as pool:  # this process is the other lane
            lanes = OnExecutor(pool, session, local)  # the workers import TF and calibrate meanwhile
            pooled = ranking("pool", lanes)
            lanes.lanes.wait_ready()
            for _ in range(REPEATS):  # a fraction of a second each: the median of a few, interleaved
                ranking("serial")
                warm = ranking("pool, warm workers", lanes)
    finally:
        backend.close()
    seconds = {label: statistics.median(runs) for label, runs in seconds.items()}
    assert pooled == alone and warm == alone, (pooled, warm, alone)
    seconds["nodes"] = len(alone)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--skip-fleet", action="store_true")
    parser.add_argument("--skip-sensitivity", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-executor-"))
    os.environ.setdefault("EDGEKIT_CACHE_DIR", str(work / "cache"))
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()}")
    for small in ([] if args.skip_fleet else [False, True]):
        s = bench_fleet(work / f"fleet-{'small' if small else 'tiny'}", args.models, args.jobs, small)
        print(f"fleet of {args.models} {'small (MobileNetV3Small 96x96)' if small else 'tiny'} models: serial {s['serial']:.1f} s, pool of {args.jobs} "
              f"{s['pool']:.1f} s = {s['pool'] / s['serial']:.2f}x (target <= 0.6x); first build done at "
              f"{s['serial first build']:.1f} s / {s['pool first build']:.1f} s (worker start-up), fleet report "
              f"{s['serial report']:.1f} s / {s['pool report']:.1f} s")
    if not args.skip_sensitivity:
        s = bench_sensitivity(work / "sensitivity", args.jobs)
        print(f"sensitivity ranking, hostile CNN ({s['nodes']} nodes, 2 passes; the caller's calibration, "
              f"{s['calibration']:.2f} s, is the same either way): serial {s['serial']:.2f} s, pool of {args.jobs} "
              f"{s['pool']:.2f} s = {s['pool'] / s['serial']:.2f}x (cold: this process alone while the workers start), with warm workers "
              f"{s['pool, warm workers']:.2f} s = {s['pool, warm workers'] / s['serial']:.2f}x; same ranking")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
