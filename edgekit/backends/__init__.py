"""The registry of targets: the only place that maps a backend name to its code.

Targets are imported on first use (`get`), so listing names imports no framework. A target
registered at run time (`register("fake", "pkg.module:TARGET")`) is used like the built-in ones;
`registrations()` carries the table into worker processes.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Optional

from edgekit.errors import ModelError, UsageError

# name -> "module:attribute" of a Target instance; order: build order and `--target` choices.
_TARGETS: dict[str, str] = {
    "tflite": "edgekit.backends.tflite.target:TARGET",
    "onnx": "edgekit.backends.onnx.target:TARGET",
    "tensorrt": "edgekit.backends.tensorrt.target:TARGET",
}
_loaded: dict[str, object] = {}


def names() -> list[str]:
    """Every registered target name."""
    return list(_TARGETS)


def register(name: str, spec: str) -> None:
    """Register (or replace) target `name` as "module:attribute" (the module imported lazily)."""
    if ":" not in spec:
        raise ValueError(f"target spec must be 'module:attribute', not {spec!r}")
    _TARGETS[name] = spec
    _loaded.pop(name, None)


def unregister(name: str) -> None:
    """Remove target `name` (a run-time registration; no error when absent)."""
    _TARGETS.pop(name, None)
    _loaded.pop(name, None)


def registrations() -> dict[str, str]:
    """The registry table (for a worker process: `restore(registrations())`)."""
    return dict(_TARGETS)


def restore(table: dict[str, str]) -> None:
    """Make the registry hold `table`'s entries (as `registrations` returned them)."""
    for name, spec in table.items():
        if _TARGETS.get(name) != spec:
            register(name, spec)


def get(name: str):
    """The Target called `name`; UsageError naming the known ones otherwise."""
    if name not in _TARGETS:
        raise UsageError(f"unknown target {name!r} (known: {', '.join(names())})")
    if name not in _loaded:
        module, attr = _TARGETS[name].split(":")
        _loaded[name] = getattr(importlib.import_module(module), attr)
    return _loaded[name]


def build_order(requested: list[str]) -> list[str]:
    """`requested` plus the upstream targets they build from, each after its upstream."""
    order: list[str] = []

    def visit(name: str) -> None:
        upstream = get(name).upstream
        if upstream is not None:
            visit(upstream)
        if name not in order:
            order.append(name)

    for name in requested:
        visit(name)
    return order


def resolve_targets(requested: list[str], model_format: str) -> list[str]:
    """`requested`, or the first target that builds from this model format's first form; UsageError
    for an unknown target or one that cannot build from what this format gives (sources.forms)."""
    from edgekit import sources

    forms = sources.forms(model_format)
    if not requested:
        requested = [next(n for n in names() if forms and get(n).needs == forms[0])]
    for name in requested:
        needs = get(name).needs
        if needs not in forms:
            able = [n for n in names() if get(n).needs in forms]
            raise UsageError(f"the {name} target needs {sources.FORM_NAMES.get(needs, needs)}; "
                             f"use {' or '.join('--target ' + n for n in able)} for {model_format} models")
    return list(requested)


def for_artifact(path: str | Path):
    """The Target that owns the artifact's format (by suffix), or None."""
    suffix = Path(path).suffix
    for name in _TARGETS:
        target = get(name)
        if suffix in target.formats:
            return target
    return None


def open_runner(path: str | Path, threads: Optional[int] = None):
    """A host Runner for an artifact file (threads default: the runtime's)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("no such model file", path)
    target = for_artifact(path)
    runner = target.runner(path, threads) if target is not None else None
    if runner is None:
        runnable = sorted({s for n in _TARGETS for s in get(n).formats if get(n).runs_on_host})
        raise UsageError(f"cannot run {path.name} on this host: expected one of {', '.join(runnable)}")
    return runner
