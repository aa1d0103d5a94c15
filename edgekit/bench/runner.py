"""Run the harness for every artifact on every device, in parallel, and build the report.

Per device (one thread each): connect, collect facts, push the harness, then per artifact push it
(sha256-verified on the device), run the harness, pull its JSON result and summarize it with
`summarize_latencies`. A failing artifact (DeviceToolError) does not stop the next one; a refused
host key or lost device marks that device's remaining rows and stops that device only.
Defaults: 50 timed runs, 5 warm-up, per-artifact run timeout 600 s (duration + 300 s in
sustained mode), push timeout 60 s + 1 s/MB.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from pydantic import ValidationError

from edgekit import __version__
from edgekit.bench import analysis
from edgekit.bench.artifacts import HARNESS_FORMATS, Artifact
from edgekit.bench.schema import BenchReport, DeviceInfo, HarnessResult, Row, Settings
from edgekit.devices.base import Device
from edgekit.errors import DeviceInconclusive, DeviceToolError, EdgekitError, HostKeyRefused
from edgekit.validate.latency import summarize_latencies

log = logging.getLogger("edgekit.bench")
HARNESS = Path(__file__).resolve().parent.parent / "devices" / "harness.py"
FACTS_TIMEOUT_S = 30.0


@dataclass
class BenchOptions:
    """How to measure; None threads/affinity -> the device entry's, else the runtime default."""

    runs: int = 50
    warmup: int = 5
    threads: Optional[int] = None
    duration_s: Optional[float] = None
    affinity: Optional[str] = None
    seed: int = 0
    timeout_s: Optional[float] = None
    inputs: Optional[Path] = None
    outputs_dir: Optional[Path] = None

    def run_timeout(self) -> float:
        if self.timeout_s:
            return self.timeout_s
        return self.duration_s + 300.0 if self.duration_s else 600.0


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _status_of(error: EdgekitError) -> str:
    if isinstance(error, HostKeyRefused):
        return "host_key_refused"
    if isinstance(error, DeviceInconclusive):
        return "inconclusive"
    return "tool_failed"


def _row(device: str, artifact: Artifact, status: str, error: str | None = None, **fields) -> Row:
    return Row(device=device, artifact=artifact.name, format=artifact.format,
               precision=artifact.precision, sha256=artifact.sha256, status=status, error=error,
               **fields)


def _harness_error(stdout: str) -> str:
    for line in reversed(stdout.strip().splitlines()):
        try:
            return str(json.loads(line).get("error") or "no error message")
        except (ValueError, AttributeError):
            continue
    return "no JSON on stdout"


def _parse_result(path: Path, device: str, artifact: str) -> HarnessResult:
    try:
        return HarnessResult.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as err:
        first = err.errors()[0]["msg"] if isinstance(err, ValidationError) else str(err)
        raise DeviceToolError(f"harness result for {artifact} is not valid: {first}", device) from None


class DeviceBench:
    """One device's share of a bench run."""

    def __init__(self, device: Device, options: BenchOptions, affinity: str | None,
                 threads: int | None, tick: Callable[[], None] = lambda: None):
        self.device, self.options, self.tick = device, options, tick
        self.affinity, self.threads = affinity, threads

    def run(self, artifacts: list[Artifact]) -> tuple[DeviceInfo, list[Row]]:
        device, rows = self.device, []
        info = DeviceInfo(name=device.name, kind=device.kind, status="ok")
        try:
            with device, tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp:
                info.facts = dataclasses.asdict(device.facts(FACTS_TIMEOUT_S))
                if not device.python:
                    raise DeviceToolError("no python configured for the harness", device.name)
                harness = f"{device.workdir}/edgekit_harness.py"
                device.push(str(HARNESS), harness, timeout=60)
                inputs = None
                if self.options.inputs:
                    inputs = f"{device.workdir}/inputs.npz"
                    device.push(str(self.options.inputs), inputs, timeout=self._push_timeout(
                        self.options.inputs.stat().st_size))
                for artifact in artifacts:
                    rows.append(self._one(artifact, harness, inputs, Path(tmp)))
                    self.tick()
        except EdgekitError as err:
            log.warning("%s: %s", device.name, err)
            info.status, info.error = _status_of(err), str(err)
            done = {row.artifact for row in rows}
            for artifact in artifacts:
                if artifact.name not in done:
                    rows.append(_row(device.name, artifact, info.status, str(err)))
                    self.tick()
        return info, rows

    @staticmethod
    def _push_timeout(size: int) -> float:
        return 60.0 + size / 1e6

    def _one(self, artifact: Artifact, harness: str, inputs: str | None, tmp: Path) -> Row:
        """Measure one artifact; a DeviceToolError becomes a tool_failed row, others propagate."""
        name = self.device.name
        if artifact.format not in HARNESS_FORMATS:
            return _row(name, artifact, "skipped", f"{artifact.format} needs a native tool (trtexec)")
        started = _now()
        try:
            result = self._measure(artifact, harness, inputs, tmp)
        except DeviceToolError as err:
            log.warning("%s: %s", name, err)
            return _row(name, artifact, "tool_failed", err.problem, started_at=started,
                        finished_at=_now())
        summary = summarize_latencies(result.latencies_ms, warmup_runs=result.warmup_runs,
                                      threads=result.threads, cold_start_ms=result.cold_start_ms,
                                      peak_rss_mb=result.peak_rss_mb)
        sustained = self.options.duration_s is not None
        runtime = f"{result.runtime.get('name', '?')} {result.runtime.get('version', '?')}"
        return _row(
            name, artifact, "ok", latency=summary, load_ms=result.load_ms,
            first_inference_ms=result.first_inference_ms, runtime=runtime,
            tool_versions={"runtime": runtime, "python": result.python, "numpy": result.numpy},
            governor=result.governor, thermal_before=result.thermal_before,
            thermal_after=result.thermal_after,
            throttling=analysis.throttling(result.thermal_before, result.thermal_after,
                                           result.latencies_ms, sustained),
            sustained_s=self.options.duration_s, latencies_ms=result.latencies_ms,
            timestamps_s=result.timestamps_s, started_at=started, finished_at=_now(),
            outputs_file=self._outputs_name(artifact) if inputs else None)

    def _outputs_name(self, artifact: Artifact) -> str:
        return f"outputs/{self.device.name}/{artifact.name}.npz"

    def _measure(self, artifact: Artifact, harness: str, inputs: str | None, tmp: Path):
        device, options = self.device, self.options
        suffix = Path(artifact.name).suffix.lower()
        remote_model = f"{device.workdir}/{artifact.sha256[:16]}{suffix}"
        remote_result = f"{device.workdir}/result-{artifact.sha256[:16]}.json"
        device.push(str(artifact.path), remote_model, timeout=self._push_timeout(artifact.bytes))
        argv = [device.python, harness, remote_model, "--runs", str(options.runs),
                "--warmup", str(options.warmup), "--seed", str(options.seed),
                "--result", remote_result]
        if self.threads:
            argv += ["--threads", str(self.threads)]
        if options.duration_s:
            argv += ["--duration", f"{options.duration_s:g}"]
        if self.affinity:
            argv += ["--affinity", self.affinity]
        if inputs:
            argv += ["--inputs", inputs, "--outputs", f"{device.workdir}/outputs.npz"]
        result = device.run(argv, timeout=options.run_timeout(), check=False)
        if result.returncode != 0:
            raise DeviceToolError(f"harness failed on {artifact.name} (exit {result.returncode}): "
                                  f"{_harness_error(result.stdout)}", device.name)
        local = tmp / f"{artifact.sha256[:16]}.json"
        device.pull(remote_result, str(local), timeout=60)
        if inputs and options.outputs_dir:
            target = options.outputs_dir / self._outputs_name(artifact).removeprefix("outputs/")
            target.parent.mkdir(parents=True, exist_ok=True)
            device.pull(f"{device.workdir}/outputs.npz", str(target), timeout=60)
        return _parse_result(local, device.name, artifact.name)


@dataclass
class Target:
    """A device to bench with its inventory defaults."""

    device: Device
    threads: Optional[int] = None
    affinity: Optional[str] = None


def run_bench(build: str, artifacts: list[Artifact], targets: list[Target], options: BenchOptions,
              max_latency_ms: float | None = None, latency_stat: str = "p50_ms",
              min_speedup: float | None = None,
              tick: Callable[[], None] = lambda: None) -> BenchReport:
    """Bench every artifact on every target (devices in parallel) and judge the rows."""
    def one(target: Target):
        threads = options.threads or target.threads
        affinity = options.affinity or target.affinity
        return DeviceBench(target.device, options, affinity, threads, tick).run(artifacts)

    with ThreadPoolExecutor(max_workers=max(1, len(targets)), thread_name_prefix="bench") as pool:
        results = [future.result() for future in [pool.submit(one, t) for t in targets]]
    devices = [info for info, _ in results]
    rows = [row for _, device_rows in results for row in device_rows]
    ups = analysis.speedups(rows)
    gates = analysis.apply_gates(rows, ups, max_latency_ms, latency_stat, min_speedup)
    for info in devices:
        statuses = {row.status for row in rows if row.device == info.name}
        if info.status == "ok" and "gate_failed" in statuses:
            info.status = "gate_failed"
    status, code = analysis.overall(rows)
    settings = Settings(threads=options.threads, runs=options.runs, warmup=options.warmup,
                        duration_s=options.duration_s, max_latency_ms=max_latency_ms,
                        latency_stat=latency_stat, min_speedup=min_speedup)
    return BenchReport(edgekit_version=__version__, created_at=_now(), build=str(build),
                       settings=settings, status=status, exit_code=code, devices=devices,
                       rows=rows, speedups=ups, gates=gates)
