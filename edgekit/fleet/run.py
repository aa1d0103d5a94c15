"""Run a fleet: every compress, then every (model, device) bench, as executor tasks.

OUT is one atomic output (fleet.json, fleet.md, fleet.html, models/NAME/ with each build and its
bench-DEVICE/ reports): an interrupted batch leaves the previous OUT untouched. Builds are keyed by
the build cache key; an unchanged one is copied from the cache (this machine's) and runs no task.
Benches always measure again. A failed task fails its entry only; the others complete.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from edgekit.errors import EdgekitError, GateFailed
from edgekit.executor import Executor, Outcome, Task
from edgekit.executor.ray import device_resource
from edgekit.fleet.schema import Fleet, load_fleet
from edgekit.fleet.tasks import BENCH, BUILD, bench_task, compress_task
from edgekit.fsutil import atomic_output_dir, write_bytes_atomic
from edgekit.pipeline import cache

MODELS = "models"


def _jobs(fleet: Fleet, out: Path) -> dict:
    """name -> CompressJob, every model and recipe checked before any task starts."""
    from edgekit import backends
    from edgekit.model.checks import check_model_path
    from edgekit.pipeline.compress import CompressJob
    from edgekit.recipe.loader import load_recipe

    jobs = {}
    for model in fleet.models:
        overrides = {"calibration": {"source": model.calibration}} if model.calibration else None
        recipe, origin = load_recipe(model.recipe, overrides)
        model_file = check_model_path(model.path, model.trust_model)
        targets = backends.resolve_targets(list(recipe.targets or []), model_file.format)
        jobs[model.label] = CompressJob(model_file, out / MODELS / model.label, recipe, origin, model.trust_model,
                                        targets)
    return jobs


def _devices(fleet: Fleet) -> dict:
    from edgekit.devices.inventory import load_inventory, resolve

    if not fleet.devices:
        return {}
    inventory, source = load_inventory(fleet.inventory)
    return {name: resolve(inventory, name, source) for name in fleet.devices}


def _write_files(folder: Path, files: dict[str, bytes], prefix: str) -> None:
    for rel, data in files.items():
        if rel.startswith(prefix + "/"):
            path = folder / rel[len(prefix) + 1:]
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, data)


def _failed(outcome: Outcome) -> dict:
    return {"status": "failed", "error": outcome.error, "exit_code": outcome.exit_code}


def _build_files(folder: Path) -> dict[str, bytes]:
    manifest = json.loads((folder / "manifest.json").read_text())
    names = ["manifest.json"] + [a["name"] for a in manifest["artifacts"]]
    return {name: (folder / name).read_bytes() for name in names}


def run_fleet(path: str | Path, out: str | Path, executor: Executor, use_cache: bool = True,
              on_step: Callable[[str], None] = lambda s: None) -> dict:
    """Run FLEET.yaml into `out`; returns the fleet document (also fleet.json). Raises after the
    output is in place when an entry failed (its exit code) or missed a gate (10)."""
    from edgekit.fleet.report import write_reports
    from edgekit.pipeline.compress import build_key

    fleet, out = load_fleet(path), Path(out)
    jobs, devices = _jobs(fleet, out), _devices(fleet)
    keys = {name: build_key(job) for name, job in jobs.items()}
    entries = {name: {"name": name, "model": str(job.model_file.path), "key": keys[name], "cached": False,
                      "status": "ok", "bench": {}} for name, job in jobs.items()}
    with atomic_output_dir(out, final=True) as stage:
        _build(stage, jobs, keys, entries, executor, use_cache, on_step)
        _bench(stage, fleet, devices, keys, entries, executor, on_step)
        document = {"fleet": str(Path(path).absolute()), "executor": executor.name, "devices": fleet.devices,
                    "models": list(entries.values())}
        on_step("writing the fleet report")
        write_reports(document, stage)
    _raise_for(document, out)
    return document


def _build(stage: Path, jobs: dict, keys: dict, entries: dict, executor: Executor, use_cache: bool, on_step) -> None:
    """Every model's build into stage/models/NAME: from the cache, else a compress task (then cached)."""
    tasks, built = [], []
    for name, job in jobs.items():
        folder = stage / MODELS / name
        folder.mkdir(parents=True)
        hit = cache.lookup(keys[name]) if use_cache else None
        if hit is not None:
            cache.copy_out(hit, folder)
            entries[name]["cached"] = True
            on_step(f"{name}: from the cache")
        else:
            tasks.append(Task(keys[name], f"compress {name}", compress_task, (job,), cost=_size(job.model_file.path)))
            built.append(name)
    on_step(f"building {len(tasks)} model(s) on the {executor.name}")
    for name, outcome in zip(built, executor.map(tasks, on_done=_progress(on_step))):
        if outcome.result is None:
            entries[name].update(_failed(outcome))
            continue
        _write_files(stage / MODELS / name, outcome.result.files, BUILD)
        entries[name]["host"] = outcome.result.host
        cache.store(keys[name], stage / MODELS / name)
    for name, entry in entries.items():
        if entry["status"] == "ok":
            report = json.loads((stage / MODELS / name / "report.json").read_text())
            entry["artifacts"] = _artifacts(report)
            entry["gate_failures"] = report["gate_failures"]


def _bench(stage: Path, fleet: Fleet, devices: dict, keys: dict, entries: dict, executor: Executor, on_step) -> None:
    """Every built model on every device, into stage/models/NAME/bench-DEVICE (a task each, holding
    the Ray resource device:NAME)."""
    pairs = [(name, device) for name in entries if entries[name]["status"] == "ok" for device in devices]
    tasks = [Task(hashlib.sha256(f"{keys[name]}:{device}".encode()).hexdigest(), f"bench {name} on {device}",
                  bench_task, (device, devices[device].model_dump(mode="json"), _build_files(stage / MODELS / name),
                               fleet.bench.runs, fleet.bench.warmup), {device_resource(device): 1})
             for name, device in pairs]
    on_step(f"benching {len(tasks)} (model, device) pair(s)")
    for (name, device), outcome in zip(pairs, executor.map(tasks, on_done=_progress(on_step))):
        if outcome.result is None:
            entries[name]["bench"][device] = _failed(outcome)
            continue
        _write_files(stage / MODELS / name / f"{BENCH}-{device}", outcome.result.files, BENCH)
        entries[name]["bench"][device] = {"status": "ok", "host": outcome.result.host,
                                          "rows": outcome.result.entry["rows"]}


def _size(path: Path) -> int:
    """Bytes of a model file or directory (the biggest build starts first)."""
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _progress(on_step):
    return lambda outcome: on_step(f"{outcome.task.name}: {outcome.error or 'done'}")


def _artifacts(report: dict) -> list[dict]:
    rows = []
    for a in report["artifacts"]:
        accuracy = a.get("accuracy") or {}
        rows.append({"name": a["name"], "precision": a["precision"], "target": a["target"], "bytes": a["bytes"],
                     "sha256": a["sha256"], "accuracy_drop_pts": accuracy.get("accuracy_drop_pts"),
                     "top1_agreement": accuracy.get("top1_agreement"),
                     "host_p50_ms": (a.get("latency") or {}).get("p50_ms")})
    return rows


def _raise_for(document: dict, out: Path) -> None:
    failed = [m for m in document["models"] if m["status"] != "ok"]
    failed += [dict(b, name=f"{m['name']} on {d}") for m in document["models"] for d, b in m["bench"].items()
               if b["status"] != "ok"]
    if failed:
        first = failed[0]
        error = EdgekitError(f"{len(failed)} fleet entr{'y' if len(failed) == 1 else 'ies'} failed; first: "
                             f"{first.get('name')}: {first['error']}", out / "fleet.json")
        error.exit_code = first["exit_code"]
        raise error
    missed = [f"{m['name']}: {g}" for m in document["models"] for g in m.get("gate_failures", [])]
    if missed:
        raise GateFailed("gate missed: " + "; ".join(missed), out / "fleet.json")
