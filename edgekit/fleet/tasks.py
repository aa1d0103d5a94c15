"""The fleet's task functions (pure: same arguments, same files): one compress, one device bench.

Both run in an executor worker, write into `work` and return a JSON-able entry (base.run_task).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

BUILD = "build"
BENCH = "bench"


def compress_task(job, work: Path) -> dict:
    """Build one model (a pipeline.compress.CompressJob) into work/build; entry: its report."""
    from edgekit.fsutil import work_dir
    from edgekit.pipeline.compress import build_output

    stage = work / BUILD
    stage.mkdir()
    with work_dir() as scratch:
        document = build_output(dataclasses.replace(job, stage=stage, work=scratch))
    return {"report": document}


def bench_task(device: str, entry: dict, build: dict[str, bytes], runs: int, warmup: int, work: Path) -> dict:
    """Bench a build's artifacts (files by name) on one inventory device; entry: the rows' summary,
    files: work/bench (bench.json, .md, .html)."""
    from edgekit.bench.artifacts import discover
    from edgekit.bench.render import write_reports
    from edgekit.bench.runner import BenchOptions, Target, run_bench
    from edgekit.bench.tools import PlatformTools
    from edgekit.devices.inventory import DeviceEntry, open_device

    folder = work / "artifacts"
    folder.mkdir()
    for name, data in build.items():
        (folder / name).write_bytes(data)
    spec = DeviceEntry.model_validate(entry)
    target = Target(open_device(device, spec), spec.threads, spec.cpu_affinity,
                    PlatformTools(spec.benchmark_model, spec.trtexec))
    report = run_bench(BUILD, discover(folder), [target], BenchOptions(runs=runs, warmup=warmup))
    (work / BENCH).mkdir()
    write_reports(report, work / BENCH)
    for name in build:
        (folder / name).unlink()
    folder.rmdir()
    return {"rows": [{"artifact": r.artifact, "precision": r.precision, "status": r.status, "error": r.error,
                      "p50_ms": r.latency.p50_ms if r.latency else None} for r in report.rows]}
