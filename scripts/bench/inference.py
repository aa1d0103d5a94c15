"""Inference helpers of the benchmarks: interleaved latency rounds, 1-thread LiteRT/onnxruntime
runners, top-1 agreement and SQNR."""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import numpy as np


def interleaved_latency(calls: dict, rounds: int, runs: int, warmup: int = 5) -> dict[str, dict]:
    """Median ms per call name: `rounds` rounds, each timing `runs` calls of every model in turn
    (interleaving spreads background load evenly); the result is the median of round medians,
    and the round medians themselves (for paired ratios)."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    per_round: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            samples = []
            for _ in range(runs):
                t0 = time.perf_counter()
                call()
                samples.append((time.perf_counter() - t0) * 1000)
            per_round[name].append(statistics.median(samples))
    return {name: {"median_ms": round(statistics.median(v), 6), "rounds_ms": [round(x, 6) for x in v],
                   "runs": runs} for name, v in per_round.items()}


def tflite_runner(path: Path):
    """x -> output of a .tflite on ai_edge_litert, 1 thread (float input and output)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    (entry,), (exit_,) = interpreter.get_input_details(), interpreter.get_output_details()

    def run(x: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(entry["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(exit_["index"])

    return run


def onnx_runner(path: Path):
    """x -> first output of an .onnx on onnxruntime's CPU provider, 1 thread, default optimizations."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = 1, 1, 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def measure_models(runners: dict, feeds: list[np.ndarray], cfg) -> tuple[dict, dict]:
    """(latency per model on feeds[0], outputs per model on every feed); cfg: a run.Config."""
    latency = interleaved_latency({k: (lambda r=r: r(feeds[0])) for k, r in runners.items()},
                                  cfg.latency_rounds, cfg.latency_runs)
    return latency, {k: [r(x) for x in feeds] for k, r in runners.items()}


def agreement(reference: list[np.ndarray], test: list[np.ndarray]) -> dict:
    """Top-1 agreement (0-1) and SQNR (dB) of `test` against `reference`, over all samples."""
    ref = np.concatenate([r.reshape(1, -1) for r in reference]).astype(np.float64)
    out = np.concatenate([t.reshape(1, -1) for t in test]).astype(np.float64)
    noise = float(np.sum((ref - out) ** 2))
    sqnr = math.inf if noise == 0 else 10 * math.log10(float(np.sum(ref ** 2)) / noise)
    return {"top1_agreement": round(float(np.mean(ref.argmax(1) == out.argmax(1))), 4),
            "sqnr_db": round(sqnr, 2) if math.isfinite(sqnr) else None, "samples": len(reference),
            "reference_distinct_top1": len(set(ref.argmax(1).tolist()))}


def median_of(values: list[float]) -> float:
    return round(statistics.median(values), 3)
