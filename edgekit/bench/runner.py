"""Run every artifact on every device, in parallel, and build the report.

Per device (one thread each): connect, collect facts, then per artifact choose the tool
(`edgekit.bench.tools`: harness, benchmark_model or trtexec), push the artifact (sha256-verified
on the device) and measure it. Harness runs bring back every latency (and with inputs, the
outputs, compared with the host FP32 reference under --accuracy); the platform tools' printed
statistics are parsed into the same row schema. A failing artifact (DeviceToolError) does not
stop the next one; a refused host key or lost device marks that device's remaining rows and
stops that device only. Defaults: 50 timed runs, 5 warm-up, per-artifact run timeout 600 s
(duration + 300 s in sustained mode), push timeout 60 s + 1 s/MB.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import platform
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from pydantic import ValidationError

from edgekit import __version__
from edgekit.bench import analysis
from edgekit.bench.accuracy import HostReferences, compare, harness_error, reference_for
from edgekit.bench.artifacts import Artifact
from edgekit.bench.schema import Accuracy, BenchReport, DeviceInfo, HarnessResult, Row, Settings
from edgekit.bench.tools import BenchmarkModelRun, PlatformTools, TrtexecRun, choose
from edgekit.devices.base import Device, DeviceFacts, collect_facts
from edgekit.errors import DeviceInconclusive, DeviceToolError, EdgekitError, HostKeyRefused
from edgekit.validate.latency import summarize_latencies

log = logging.getLogger("edgekit.bench")
HARNESS = Path(__file__).resolve().parent.parent / "devices" / "harness.py"
FACTS_TIMEOUT_S = 30.0
BAD_INPUTS_EXIT = 2  # harness.py: bad arguments or inputs


@dataclass
class BenchOptions:
    """How to measure; None threads/affinity -> the device entry's, else the runtime default.

    `inputs`: fed to the harness, outputs pulled to `outputs_dir`; `references`: host FP32
    outputs of the same inputs (--accuracy). `tool`: auto | harness | benchmark_model | trtexec.
    """

    runs: int = 50
    warmup: int = 5
    threads: Optional[int] = None
    duration_s: Optional[float] = None
    affinity: Optional[str] = None
    seed: int = 0
    timeout_s: Optional[float] = None
    inputs: Optional[Path] = None
    outputs_dir: Optional[Path] = None
    tool: str = "auto"
    op_profiling: bool = False
    references: Optional[HostReferences] = None
    artifacts: list[Artifact] = field(default_factory=list)

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


def _parse_result(path: Path, device: str, artifact: str) -> HarnessResult:
    try:
        return HarnessResult.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as err:
        first = err.errors()[0]["msg"] if isinstance(err, ValidationError) else str(err)
        raise DeviceToolError(f"harness result for {artifact} is not valid: {first}", device) from None


class DeviceBench:
    """One device's share of a bench run."""

    def __init__(self, device: Device, options: BenchOptions, affinity: str | None,
                 threads: int | None, tools: PlatformTools | None = None,
                 tick: Callable[[], None] = lambda: None):
        self.device, self.options, self.tick = device, options, tick
        self.affinity, self.threads = affinity, threads
        self.tools = tools or PlatformTools()
        self._pushed: dict[str, str] = {}
        self._benchmark_model: BenchmarkModelRun | None = None
        self.facts = DeviceFacts()

    def run(self, artifacts: list[Artifact]) -> tuple[DeviceInfo, list[Row]]:
        device, rows = self.device, []
        info = DeviceInfo(name=device.name, kind=device.kind, status="ok")
        try:
            with device, tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp:
                facts = self.facts = collect_facts(device, FACTS_TIMEOUT_S)
                info.facts = dataclasses.asdict(facts)
                for artifact in artifacts:
                    rows.append(self._one(artifact, facts.runtimes, Path(tmp)))
                    rows[-1].emulated = facts.emulated
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

    def _push_once(self, key: str, local: Path, remote: str) -> str:
        if key not in self._pushed:
            self.device.push(str(local), remote, timeout=60.0 + local.stat().st_size / 1e6)
            self._pushed[key] = remote
        return self._pushed[key]

    def _push_artifact(self, artifact: Artifact) -> str:
        suffix = Path(artifact.name).suffix.lower()
        remote = f"{self.device.workdir}/{artifact.sha256[:16]}{suffix}"
        return self._push_once(f"artifact:{artifact.sha256}", artifact.path, remote)

    def _one(self, artifact: Artifact, runtimes: dict[str, str], tmp: Path) -> Row:
        """Measure one artifact; a DeviceToolError becomes a tool_failed row, others propagate."""
        name = self.device.name
        tool, reason, forced = choose(artifact, self.options.tool, self.device.python, runtimes,
                                      self.tools)
        if tool is None:
            return _row(name, artifact, "tool_failed" if forced else "skipped",
                        f"no tool can run {artifact.format} here: {reason}")
        started = _now()
        try:
            if tool == "harness":
                fields = self._harness(artifact, tmp)
            elif tool == "benchmark_model":
                fields = self._run_benchmark_model(artifact)
            else:
                fields = self._run_trtexec(artifact)
        except DeviceToolError as err:
            log.warning("%s: %s", name, err)
            return _row(name, artifact, "tool_failed", err.problem, tool=tool, started_at=started,
                        finished_at=_now())
        if self.options.references is not None and "accuracy" not in fields:
            fields["accuracy"] = Accuracy(error=f"{tool} does not return output tensors")
        return _row(name, artifact, "ok", tool=tool, started_at=started, finished_at=_now(),
                    sustained_s=self.options.duration_s, **fields)

    def _run_benchmark_model(self, artifact: Artifact) -> dict:
        if self._benchmark_model is None:
            self._benchmark_model = BenchmarkModelRun(self.device, self.tools.benchmark_model)
        o = self.options
        return self._benchmark_model.measure(
            self._push_artifact(artifact), runs=o.runs, warmup=o.warmup, threads=self.threads,
            affinity=self.affinity, duration_s=o.duration_s, op_profiling=o.op_profiling,
            timeout=o.run_timeout())

    def _run_trtexec(self, artifact: Artifact) -> dict:
        o = self.options
        return TrtexecRun(self.device, self.tools.trtexec).measure(
            artifact, self._push_artifact(artifact), runs=o.runs, warmup=o.warmup,
            duration_s=o.duration_s, timeout=o.run_timeout())

    # -- the harness --------------------------------------------------------------------------
    def _harness(self, artifact: Artifact, tmp: Path) -> dict:
        """Row fields from harness.py; with inputs also the outputs (and accuracy)."""
        options, reference, ref_outputs = self.options, None, None
        accuracy_error = None
        if options.references is not None:
            reference = reference_for(artifact, options.artifacts)
            if reference is None:
                accuracy_error = "no FP32 artifact to use as the reference"
            else:
                ref_outputs, accuracy_error = options.references.outputs(reference)
        use_inputs = options.inputs is not None and accuracy_error is None
        result, code, message = self._measure(artifact, tmp, use_inputs)
        if use_inputs and code == BAD_INPUTS_EXIT and options.references is not None:
            # --accuracy over a build with several models: inputs that do not fit this one
            accuracy_error = f"inputs do not fit {artifact.name}: {message}"
            result, code, message = self._measure(artifact, tmp, False)
        if code != 0:
            raise DeviceToolError(f"harness failed on {artifact.name} (exit {code}): {message}",
                                  self.device.name)
        fields = self._harness_fields(artifact, result)
        if use_inputs and accuracy_error is None:
            fields["outputs_file"] = self._outputs_name(artifact)
            if reference is not None:
                local = self._outputs_path(artifact, tmp)
                try:
                    fields["accuracy"] = compare(reference, ref_outputs, local, options.inputs)
                except ValueError as err:
                    fields["accuracy"] = Accuracy(reference=reference.name, error=str(err))
                if self.facts.abi and self.facts.abi != platform.machine():
                    fields["host_agreement"] = self._host_agreement(artifact, local)
        elif options.references is not None:
            fields["accuracy"] = Accuracy(reference=reference.name if reference else None,
                                          error=accuracy_error)
        return fields

    def _host_agreement(self, artifact: Artifact, device_outputs: Path) -> Accuracy:
        """This host's outputs of the same artifact vs the device's (another ISA's kernels)."""
        host_outputs, error = self.options.references.outputs(artifact)
        label = f"{artifact.name} on the host ({platform.machine()})"
        if error:
            return Accuracy(reference=label, error=error)
        try:
            agreement = compare(artifact, host_outputs, device_outputs, self.options.inputs)
        except ValueError as err:
            return Accuracy(reference=label, error=str(err))
        return agreement.model_copy(update={"reference": label})

    def _harness_fields(self, artifact: Artifact, result: HarnessResult) -> dict:
        summary = summarize_latencies(result.latencies_ms, warmup_runs=result.warmup_runs,
                                      threads=result.threads, cold_start_ms=result.cold_start_ms,
                                      peak_rss_mb=result.peak_rss_mb)
        runtime = f"{result.runtime.get('name', '?')} {result.runtime.get('version', '?')}"
        return dict(
            latency=summary, load_ms=result.load_ms, first_inference_ms=result.first_inference_ms,
            runtime=runtime,
            tool_versions={"runtime": runtime, "python": result.python, "numpy": result.numpy},
            governor=result.governor, thermal_before=result.thermal_before,
            thermal_after=result.thermal_after,
            throttling=analysis.throttling(result.thermal_before, result.thermal_after,
                                           result.latencies_ms, self.options.duration_s is not None),
            latencies_ms=result.latencies_ms, timestamps_s=result.timestamps_s)

    def _outputs_name(self, artifact: Artifact) -> str:
        return f"outputs/{self.device.name}/{artifact.name}.npz"

    def _outputs_path(self, artifact: Artifact, tmp: Path) -> Path:
        base = self.options.outputs_dir or tmp / "outputs"
        return base / self._outputs_name(artifact).removeprefix("outputs/")

    def _measure(self, artifact: Artifact, tmp: Path, use_inputs: bool):
        """(HarnessResult | None, exit code, error message) of one harness run."""
        device, options = self.device, self.options
        harness = self._push_once("harness", HARNESS, f"{device.workdir}/edgekit_harness.py")
        remote_model = self._push_artifact(artifact)
        remote_result = f"{device.workdir}/result-{artifact.sha256[:16]}.json"
        argv = [device.python, harness, remote_model, "--runs", str(options.runs),
                "--warmup", str(options.warmup), "--seed", str(options.seed),
                "--result", remote_result]
        if self.threads:
            argv += ["--threads", str(self.threads)]
        if options.duration_s:
            argv += ["--duration", f"{options.duration_s:g}"]
        if self.affinity:
            argv += ["--affinity", self.affinity]
        if use_inputs:
            inputs = self._push_once("inputs", options.inputs, f"{device.workdir}/inputs.npz")
            argv += ["--inputs", inputs, "--outputs", f"{device.workdir}/outputs.npz"]
        result = device.run(argv, timeout=options.run_timeout(), check=False)
        if result.returncode != 0:
            return None, result.returncode, harness_error(result.stdout)
        local = tmp / f"{artifact.sha256[:16]}.json"
        device.pull(remote_result, str(local), timeout=60)
        if use_inputs:
            target = self._outputs_path(artifact, tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            device.pull(f"{device.workdir}/outputs.npz", str(target), timeout=60)
        return _parse_result(local, device.name, artifact.name), 0, None


@dataclass
class Target:
    """A device to bench with its inventory defaults."""

    device: Device
    threads: Optional[int] = None
    affinity: Optional[str] = None
    tools: PlatformTools = field(default_factory=PlatformTools)


def run_bench(build: str, artifacts: list[Artifact], targets: list[Target], options: BenchOptions,
              max_latency_ms: float | None = None, latency_stat: str = "p50_ms",
              min_speedup: float | None = None,
              tick: Callable[[], None] = lambda: None) -> BenchReport:
    """Bench every artifact on every target (devices in parallel) and judge the rows."""
    def one(target: Target):
        threads = options.threads or target.threads
        affinity = options.affinity or target.affinity
        return DeviceBench(target.device, options, affinity, threads, target.tools,
                           tick).run(artifacts)

    options.artifacts = artifacts
    if options.references is not None:  # host FP32 runs first, once each, before the devices
        for reference in {ref.name: ref for a in artifacts if (ref := reference_for(a, artifacts))}.values():
            options.references.outputs(reference)
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
    settings = Settings(tool=options.tool, threads=options.threads, runs=options.runs,
                        warmup=options.warmup, duration_s=options.duration_s,
                        max_latency_ms=max_latency_ms, latency_stat=latency_stat,
                        min_speedup=min_speedup, op_profiling=options.op_profiling,
                        accuracy_inputs=str(options.inputs) if options.references else None)
    return BenchReport(edgekit_version=__version__, created_at=_now(), build=str(build),
                       settings=settings, status=status, exit_code=code, devices=devices,
                       rows=rows, speedups=ups, gates=gates,
                       warnings=analysis.unjudged(rows, gates, max_latency_ms, min_speedup))
