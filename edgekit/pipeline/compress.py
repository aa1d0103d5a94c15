"""The compress pipeline: load -> fix shapes -> calibration split -> build -> validate -> report.

The worker writes everything into a staging directory that the calling process creates and,
once the build is cached, swaps for OUT as a whole (`edgekit.fsutil.atomic_output_dir`, the run's
commit point); manifest.json is written last. A missed gate raises GateFailed after the complete
output is in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

import edgekit
from edgekit import backends
from edgekit.calibration.dataset import Dataset, load_dataset
from edgekit.calibration.sources import SampleRef, precheck_calibration
from edgekit.calibration.shape_hint import shape_from_calibration
from edgekit.bench.compare import align_outputs
from edgekit.errors import GateFailed, OutputError
from edgekit.executor import LazyExecutor
from edgekit.fsutil import (
    atomic_output_dir,
    naming_user_paths,
    sha256_file,
    sha256_tree,
    write_json_atomic,
    work_dir,
    write_text_atomic,
)
from edgekit.model.checks import ENTRY, ModelFile, check_model_path
from edgekit.pipeline import cache
from edgekit.pipeline.equalization import record_equalization, record_smoothing
from edgekit.pipeline.fallback_stage import apply_fallback
from edgekit.pipeline.gates import evaluate_gates, flag_artifacts
from edgekit.pipeline.isolate import run_isolated
from edgekit.pipeline.embed import embed_contract
from edgekit.preprocessing.resolve import check_float_accuracy, resolve_preprocessing, user_origins
from edgekit.recipe.loader import recipe_to_yaml
from edgekit.recipe.schema import Recipe
from edgekit.report.html import render_html
from edgekit.report.markdown import render_markdown
from edgekit.report.schema import (ArtifactEntry, CalibrationInfo, FusionInfo, ModelInfo, PreprocessingInfo,
                                   Report, TensorInfo)
from edgekit.runtime.base import TensorSpec
from edgekit.backends.base import BuildContext, Built
from edgekit.validate.evaluate import compare, host_latency
from edgekit.validate.roles import resolve_roles

log = logging.getLogger("edgekit")
DEVICE_SAMPLES = 16
MANIFEST = "manifest.json"


def _specs(tensors: list[TensorSpec]) -> list[TensorInfo]:
    return [TensorInfo(name=t.name, shape=list(t.shape), dtype=t.dtype) for t in tensors]


def _tool_versions() -> dict[str, str]:
    return {"python": platform.python_version(), **cache.backend_versions()}


def _keys(refs: list[SampleRef]) -> list[str]:
    return [r.key for r in refs]


@dataclass(frozen=True)
class CompressJob:
    """Everything the build needs, picklable: it crosses into the worker process."""

    model_file: ModelFile
    out: Path
    recipe: Recipe
    recipe_origin: str
    trust_model: bool
    targets: list[str]
    device: Optional[str] = None
    inventory: Optional[str] = None
    preprocess_flags: frozenset = frozenset()
    allow_low_float_accuracy: bool = False
    registry: dict = field(default_factory=backends.registrations)  # targets registered at run time too
    stage: Optional[Path] = None  # where the worker writes (created and published by the caller)
    work: Optional[Path] = None  # scratch directory (created and removed by the caller)
    jobs: Optional[int] = 1  # the fallback search's lanes: this process and jobs - 1 workers (None: the core count); not in the key
    ray: Optional[str] = None  # or its Ray cluster ("auto" or an address)


def run_compress(model_path: str | Path, out: str | Path, recipe: Recipe, recipe_origin: str,
                 trust_model: bool = False, on_step: Callable[[str], None] = lambda s: None,
                 device: str | None = None, inventory: str | None = None, use_cache: bool = True,
                 isolate: bool = True, preprocess_flags: frozenset = frozenset(),
                 allow_low_float_accuracy: bool = False, jobs: int | None = None,
                 ray: str | None = None) -> tuple[Report, bool]:
    """Build, validate and report every (target, precision) into `out`; returns (report, cache hit).

    device: inventory name of an ssh device for the TensorRT engine build (default: plan only).
    use_cache: reuse a cached identical build [default: on; never with a device].
    isolate: run conversions in a child process, so native crashes become errors [default: on].
    preprocess_flags: preprocess fields given as flags (the report tells them from recipe values).
    allow_low_float_accuracy: build even when the float model is not above chance on the labels.
    jobs: worker processes of the fallback search [default: the core count; 1: in this process];
    ray: run them on that Ray cluster instead. Neither changes the result (nor the cache key).
    """
    model_file = check_model_path(model_path, trust_model)
    targets = backends.resolve_targets(list(recipe.targets or []), model_file.format)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError("exists and is not a directory", out)
    if recipe.calibration.source is not None:  # fail fast, before any framework starts
        precheck_calibration(recipe.calibration.source, recipe.calibration.labels)
    job = CompressJob(model_file, out, recipe, recipe_origin, trust_model, targets, device, inventory,
                      frozenset(preprocess_flags), allow_low_float_accuracy, jobs=jobs, ray=ray)
    key = None
    if use_cache and device is None and model_file.format != ENTRY:  # an entry point's code is not hashed
        on_step("checking the build cache")
        key = build_key(job)
        hit = cache.lookup(key)
        if hit is not None:
            with atomic_output_dir(out, final=True) as stage:
                cache.copy_out(hit, stage)
            report = Report.model_validate_json((out / "report.json").read_text())
            _raise_if_gates_missed(report, out)
            return report, True
    with atomic_output_dir(out, final=True) as stage, work_dir() as work:
        job = dataclasses.replace(job, stage=stage, work=work)
        document = run_isolated(build_output, job, on_step=on_step) if isolate else build_output(job, on_step)
        report = Report.model_validate(document)
        if key is not None:
            cache.store(key, stage)
    _raise_if_gates_missed(report, out)
    return report, False


def build_key(job: CompressJob) -> str:
    """The content hash of a build (edgekit.pipeline.cache.cache_key): same key, same artifacts."""
    recipe = job.recipe
    material = {**recipe.model_dump(mode="json"), "trust_model": job.trust_model,
                "preprocess_given": sorted(user_origins(recipe.preprocess, job.preprocess_flags).items()),
                "allow_low_float_accuracy": job.allow_low_float_accuracy}
    labels = [Path(recipe.calibration.labels)] if recipe.calibration.labels else []
    return cache.cache_key(job.model_file.path, material, job.targets, labels)


def _gate_failures(entries: list[ArtifactEntry]) -> list[str]:
    failures = []
    for e in entries:
        missed = [f"{g.gate} {g.detail}" for g in e.gates if not g.passed]
        fallback = e.details.get("fallback")
        if missed and fallback and not fallback["met"]:
            shares = (fallback.get("ladder") or {}).get("mac_share")
            macs = f", conv/matmul MACs {', '.join(f'{k} {v:.1%}' for k, v in shares.items())}" if shares else ""
            missed.append(f"best fallback point kept {fallback['float_layers'] or 'no layers'} in float{macs} "
                          f"({fallback['stopped']})")
        failures += [f"{e.name}: {m}" for m in missed]
    return failures


def _raise_if_gates_missed(report: Report, out: Path) -> None:
    if not report.gates_passed:
        raise GateFailed("gate missed: " + "; ".join(report.gate_failures), out / "report.json")


@contextlib.contextmanager
def _open_device(job: CompressJob, order: list[str]):
    """(device, inventory entry) for the targets that build on a device (TensorRT engines); (None, None)
    when none of `order` does or no device was named."""
    if job.device is None or not any(backends.get(n).uses_device for n in order):
        yield None, None
        return
    from edgekit.devices.inventory import load_inventory, open_device, resolve

    inventory, source = load_inventory(job.inventory)
    entry = resolve(inventory, job.device, source)
    with open_device(job.device, entry) as device:
        yield device, entry


def _build_targets(job: CompressJob, source, recipe: Recipe, data: Dataset, validation, stage: Path, work: Path,
                   on_step) -> tuple[list[Built], dict, list[str]]:
    """Every requested target's artifacts (and the upstream ones they build from), in build order,
    then the float fallback, then each target's `finish`; the device stays open throughout."""
    built, fusion, notes, results, contexts = [], {}, [], {}, {}
    order = backends.build_order(job.targets)
    with _open_device(job, order) as (device, entry):
        for name in order:
            target = backends.get(name)
            ctx = contexts[name] = BuildContext(stage, work, on_step, device, entry, validation,
                                                results.get(target.upstream), dependency_only=name not in job.targets)
            results[name] = result = target.build(source, recipe, data.calibration_factory(), ctx)
            built += result.built
            notes += result.notes
            if result.fusion is not None:
                fusion[name] = result.fusion
        _, ref_outputs, _, roles = validation
        with LazyExecutor(job.jobs, job.ray) as executor:  # its workers start only if the search needs them
            apply_fallback(built, source, recipe, data, ref_outputs,
                           BuildContext(stage, work, on_step, device, entry, validation), roles, executor)
        for name in order:
            notes += backends.get(name).finish([b for b in built if b.target == name], contexts[name])
    return built, fusion, notes


def build_output(job: CompressJob, on_step: Callable[[str], None] = lambda s: None) -> dict:
    """The build itself (runs in the worker): build, validate and report into job.stage, using
    job.work as scratch; returns the report JSON. Publishing is the caller's."""
    from edgekit import sources

    backends.restore(job.registry)
    recipe, targets, stage, work = job.recipe, job.targets, job.stage, job.work
    with naming_user_paths(job.model_file.path):
        on_step("loading model")
        int8 = "int8" in recipe.precisions or any(backends.get(n).precisions == ("int8",) for n in targets)
        equalize = recipe.int8.equalize if int8 else "off"
        source = sources.prepare(job.model_file, Path(work), recipe.input_shapes, job.trust_model,
                                 functools.partial(shape_from_calibration, recipe), equalize)
        on_step("inferring the preprocessing")
        resolution = resolve_preprocessing(recipe, job.preprocess_flags, source, job.model_file.path)
        recipe = recipe.model_copy(update={"preprocess": resolution.preprocess})
        on_step("validating calibration data")
        data = load_dataset(recipe, source.inputs)
        on_step("running the float reference")
        ref_outputs = [source.reference(f) for f in data.validation_feeds]
        export = None
        if source.export is not None:  # PyTorch: the export's own error, ONNX FP32 vs PyTorch
            from edgekit.sources.pytorch import export_error

            export = {**source.export, **export_error(source.onnx_path, data.validation_feeds, ref_outputs)}
        roles = resolve_roles(ref_outputs, {s.name: s.shape for s in source.inputs}, recipe.outputs)
        float_check = check_float_accuracy(resolution, data.labels, ref_outputs, recipe.calibration.source,
                                           job.allow_low_float_accuracy, roles.primary)
        validation = (data.validation_feeds, ref_outputs, data.labels, roles)
        built, fusion, notes = _build_targets(job, source, recipe, data, validation, stage, Path(work), on_step)
        notes = data.notes + notes + record_equalization(built, source, equalize) \
            + record_smoothing(built, recipe.int8.smooth if int8 else "off")
        embed_contract(built, resolution, source, recipe, ref_outputs, roles.primary)
        entries = _validate(built, recipe, data, ref_outputs, on_step, roles)
        for warning in flag_artifacts(entries, lambda target: backends.get(target).baseline):
            log.warning("%s", warning)
            notes.append(warning)
        report = Report(
            edgekit_version=edgekit.__version__,
            tools=_tool_versions(),
            recipe={"origin": job.recipe_origin, "name": recipe.name, "targets": ",".join(targets)},
            model=ModelInfo(path=str(job.model_file.path), format=job.model_file.format,
                            sha256=(export or {}).get("source_sha256") or sha256_tree(job.model_file.path),
                            inputs=_specs(source.inputs), outputs=_specs(source.outputs),
                            fixed_dims=source.fixed_dims, export=export),
            calibration=CalibrationInfo(
                source=recipe.calibration.source, synthetic=data.synthetic,
                calibration_samples=len(data.split.calibration),
                validation_samples=len(data.validation_feeds),
                labels=any(label is not None for label in data.labels),
                split_rule=data.split.rule, split_file=None if data.synthetic else "split.json"),
            preprocessing=PreprocessingInfo(**resolution.info(), float_accuracy=float_check),
            fusion={k: FusionInfo(**v) for k, v in fusion.items()},
            artifacts=entries,
            gates_passed=all(g.passed for e in entries for g in e.gates),
            gate_failures=_gate_failures(entries),
            notes=notes,
        )
        on_step("writing report")
        _write_outputs(stage, report, recipe, data)
    return report.model_dump(mode="json")


def _validate(built: list[Built], recipe: Recipe, data: Dataset, ref_outputs, on_step, roles) -> list[ArtifactEntry]:
    v = recipe.validation
    fp32_bytes = {b.target: b.path.stat().st_size for b in built if b.precision == "fp32"}
    entries = []
    for b in built:
        on_step(f"validating {b.name}")
        runner = backends.open_runner(b.path, v.threads)
        outputs = [align_outputs(r, runner.run(f)) for f, r in zip(data.validation_feeds, ref_outputs)]
        accuracy = compare(ref_outputs, outputs, data.labels, roles)
        latency = host_latency(lambda: backends.open_runner(b.path, v.threads), data.validation_feeds[0],
                               threads=v.threads, warmup_runs=v.warmup_runs, runs=v.runs)
        size = b.path.stat().st_size
        baseline = fp32_bytes.get(backends.get(b.target).baseline, size)
        entry = ArtifactEntry(
            name=b.name, path=b.name, format=b.path.suffix.lstrip("."), target=b.target,
            precision=b.precision, bytes=size, size_ratio=round(size / baseline, 4),
            sha256=sha256_file(b.path), op_counts=b.op_counts, compute_dtypes=b.compute_dtypes,
            compression=b.compression, accuracy=accuracy, latency=latency,
            details={**b.details, "io": {"inputs": _io(runner.inputs), "outputs": _io(runner.outputs)}})
        entry.gates = evaluate_gates(entry, recipe.gates, is_reference=b.precision == "fp32")
        entries.append(entry)
    return entries


def sidecar_name(artifact: str) -> str:
    """model_int8.tflite -> model_int8.json (beside the artifact, for app code)."""
    return f"{artifact.rsplit('.', 1)[0]}.json"


def sidecar(entry: ArtifactEntry, recipe: Recipe) -> dict:
    """What app code needs to feed the artifact: I/O tensors (with int8 scale/zero point), preprocessing."""
    return {
        "artifact": entry.name,
        "sha256": entry.sha256,
        "format": entry.format,
        "target": entry.target,
        "precision": entry.precision,
        "inputs": entry.details.get("io", {}).get("inputs", []),
        "outputs": entry.details.get("io", {}).get("outputs", []),
        "preprocess": recipe.preprocess.model_dump(mode="json"),
        "labels": recipe.class_names,
        "edgekit_version": edgekit.__version__,
    }


def _io(tensors: list[TensorSpec]) -> list[dict]:
    return [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
             "quantization": None if t.quantization is None else
             {"scale": t.quantization[0], "zero_point": t.quantization[1]}} for t in tensors]


def _write_outputs(stage: Path, report: Report, recipe: Recipe, data: Dataset) -> None:
    write_text_atomic(stage / "recipe.yaml", recipe_to_yaml(recipe))
    feeds = data.validation_feeds[:DEVICE_SAMPLES]  # for on-device accuracy (`edgekit bench --accuracy`)
    batch_first = all(a.ndim and a.shape[0] == 1 for a in feeds[0].values())  # else a leading sample axis
    join = np.concatenate if batch_first else np.stack
    np.savez_compressed(stage / "validation_inputs.npz", **{name: join([f[name] for f in feeds]) for name in feeds[0]})
    if not data.synthetic:
        write_json_atomic(stage / "split.json", {
            "rule": data.split.rule,
            "calibration": _keys(data.split.calibration),
            "validation": _keys(data.split.validation),
        })
    for entry in report.artifacts:
        write_json_atomic(stage / sidecar_name(entry.name), sidecar(entry, recipe))
    document = report.model_dump(mode="json")
    write_json_atomic(stage / "report.json", document)
    write_text_atomic(stage / "report.md", render_markdown(report))
    write_text_atomic(stage / "report.html", render_html(report, data.validation_feeds[0]))
    manifest = {
        "schema_version": 1,
        "edgekit_version": edgekit.__version__,
        "model_sha256": report.model.sha256,
        "artifacts": [{"name": a.name, "format": a.format, "target": a.target, "precision": a.precision,
                       "sha256": a.sha256, "bytes": a.bytes} for a in report.artifacts],
    }
    write_text_atomic(stage / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
