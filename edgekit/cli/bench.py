"""`edgekit bench`: measure a build's artifacts on one or more devices and write bench.json/md/html."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import click

from edgekit.cli.options import emit_json, output_options, setup_logging
from edgekit.errors import UsageError

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | None) -> float | None:
    """'10m' -> 600.0; units ms, s (default), m, h."""
    if text is None:
        return None
    match = DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"--duration {text!r}: want a positive number with unit s, m or h (e.g. 10m)")
    return float(match.group(1)) * UNITS[match.group(2)]


def _progress(total: int, quiet: bool):
    """(tick, stop): a rich progress bar on a TTY, nothing otherwise or when quiet."""
    if quiet or not sys.stderr.isatty():
        return (lambda: None), (lambda: None)
    from rich.console import Console
    from rich.progress import Progress

    progress = Progress(console=Console(stderr=True), transient=True)
    task = progress.add_task("benchmarking", total=total)
    progress.start()
    return (lambda: progress.advance(task)), progress.stop


@click.command("bench")
@click.argument("build", type=click.Path(exists=True, path_type=Path))
@click.option("--device", "devices", multiple=True, default=("local",), show_default=True,
              help="Device name from devices.yaml (repeatable); 'local' is this host.")
@click.option("--inventory", type=click.Path(path_type=Path), help="devices.yaml to use.")
@click.option("--threads", type=click.IntRange(1, 256), help="CPU threads (default: device entry's).")
@click.option("--runs", type=click.IntRange(1), default=50, show_default=True)
@click.option("--warmup", type=click.IntRange(0), default=5, show_default=True)
@click.option("--duration", help="Sustained mode: run for this long (e.g. 30s, 10m) instead of --runs.")
@click.option("--affinity", help="Hex CPU mask (as taskset takes), overrides the device entry's.")
@click.option("--inputs", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=".npz of inputs by name ((N, ...) arrays: N samples); outputs come back under "
              "OUT/outputs/.")
@click.option("--accuracy", is_flag=True, help="Compare each device's outputs with the host FP32 "
              "run on the same inputs (BUILD/validation_inputs.npz, else --inputs).")
@click.option("--tool", type=click.Choice(["auto", "harness", "benchmark_model", "trtexec"]),
              default="auto", show_default=True,
              help="Measuring tool where several apply; auto: the harness where the device has "
              "python + a runtime, else benchmark_model (.tflite); trtexec for TensorRT artifacts.")
@click.option("--op-profiling", is_flag=True,
              help="benchmark_model: per-op profile (--enable_op_profiling), top ops in the report.")
@click.option("--max-latency-ms", type=float, help="Gate: every artifact's --latency-stat at most this.")
@click.option("--latency-stat", type=click.Choice(["p50", "p90", "p99", "mean"]), default="p50",
              show_default=True)
@click.option("--min-speedup", type=float, help="Gate: every INT8 vs FP32 speed-up at least this.")
@click.option("--timeout", "timeout_s", type=float, help="Per-artifact run timeout in seconds "
              "[default: 600, or duration + 300].")
@click.option("--accept-new-host-key", is_flag=True, help="Trust an ssh device's host key on first contact.")
@click.option("--out", type=click.Path(path_type=Path), help="Report directory [default: BUILD/bench].")
@output_options
def bench(build, devices, inventory, threads, runs, warmup, duration, affinity, inputs, accuracy,
          tool, op_profiling, max_latency_ms, latency_stat, min_speedup, timeout_s,
          accept_new_host_key, out, as_json, quiet):
    """Measure BUILD's artifacts (a compress output dir, or one .tflite/.onnx/.plan) on devices.

    \b
    Devices run in parallel; one failing device does not stop the others. Exit codes:
    0 ok, 9 a tool failed on a device (or no tool could measure anything), 10 a gate was missed, 11 a device was inconclusive
    (unreachable, timed out, connection lost), 12 an ssh host key was refused. When several
    apply: 10 > 9 > 12 > 11 (a measured miss is never hidden by an unreachable device).
    The reports are written before the exit.
    """
    from edgekit.bench import analysis
    from edgekit.bench.accuracy import HostReferences, resolve_inputs
    from edgekit.bench.artifacts import discover
    from edgekit.bench.render import write_reports
    from edgekit.bench.runner import HARNESS, BenchOptions, Target, run_bench
    from edgekit.bench.tools import PlatformTools
    from edgekit.devices.inventory import load_inventory, open_device, resolve
    from edgekit.fsutil import atomic_output_dir

    setup_logging(quiet)
    artifacts = discover(build)
    if min_speedup is not None and not (
            {a.precision for a in artifacts} >= {"int8", "fp32"}):
        raise UsageError("--min-speedup needs both an int8 and an fp32 artifact", build)
    inv, source = load_inventory(inventory)
    names = list(dict.fromkeys(devices))
    entries = {name: resolve(inv, name, source) for name in names}
    targets = [Target(open_device(name, entry, accept_new_host_key), entry.threads,
                      entry.cpu_affinity, PlatformTools(entry.benchmark_model, entry.trtexec))
               for name, entry in entries.items()]
    out = out or (build / "bench" if build.is_dir() else build.parent / "bench")
    if accuracy:
        inputs = resolve_inputs(build, inputs)
    options = BenchOptions(runs=runs, warmup=warmup, threads=threads,
                           duration_s=parse_duration(duration), affinity=affinity,
                           timeout_s=timeout_s, inputs=inputs, tool=tool, op_profiling=op_profiling,
                           references=HostReferences(inputs, HARNESS) if accuracy else None)
    tick, stop = _progress(len(artifacts) * len(targets), quiet or as_json)
    try:
        with atomic_output_dir(out, final=True) as staging:
            options.outputs_dir = staging / "outputs"
            report = run_bench(str(build), artifacts, targets, options, max_latency_ms,
                               f"{latency_stat}_ms", min_speedup, tick=tick)
            write_reports(report, staging)
    finally:
        stop()
        if options.references is not None:
            options.references.close()
    for warning in report.warnings:
        logging.getLogger("edgekit.bench").warning("%s", warning)
    logging.getLogger("edgekit.bench").info("reports in %s (bench.json, bench.md, bench.html)", out)
    if as_json:
        summary = report.model_dump(mode="json", exclude={"rows": {"__all__": {
            "latencies_ms", "timestamps_s"}}})
        summary["out"] = str(out)
        emit_json(summary)
    error = analysis.failure(report.rows)
    if error is not None:
        raise error
