"""PyTorch models in: a `torch.export` archive (.pt2) or an entry point `package.module:function`.

`edgekit.model.checks` recognizes both and checks a `.pt2` as an untrusted archive before torch
parses it (`torch.export.load` runs no user code), and refuses an entry point without
`--trust-model`. An entry point imports the user's module (found on PYTHONPATH or in the current
directory) and calls the function; it must return an `nn.Module`, and every input of its `forward`
needs an `--input-shape` (float32 inputs).

In the worker: `torch.export.export` (an entry point's module, at its --input-shape; a .pt2 is
used as saved) -> `torch.onnx.export(..., dynamo=True)` at `ONNX_OPSET` (18, recorded) with
constant folding but without the exporter's rewrite rules, so that edgekit's fusion passes do (and
report) the BatchNorm folds; then the ONNX source path fixes any dynamic dims (batch 1,
--input-shape, or the calibration samples). The float reference is the PyTorch program itself, not
the exported ONNX graph.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgekit.errors import ConversionError, MissingDependencyError, ModelError, UsageError, condense
from edgekit.model.checks import ENTRY, PT2, ModelFile, one_line

ONNX_OPSET = 18  # the dynamo exporter's lowest native opset (onnxruntime >= 1.14; TensorRT 8.6 parses up to 17)
INSTALL_HINT = "pip install 'edgekit[torch]'"


def _torch():
    try:
        import onnxscript  # noqa: F401  (torch.onnx's dynamo exporter needs it)
        import torch
    except ImportError as err:
        raise MissingDependencyError(f"PyTorch models need torch and onnxscript ({err.name}): {INSTALL_HINT}") from None
    return torch


def _import_entry_point(text: str):
    """The entry point's function, its module imported (cwd first on sys.path, as `python -m` does)."""
    module_name, func_name = text.split(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as err:
        raise ModelError(f"cannot import module '{module_name}' ({one_line(err)})", text) from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ModelError(f"module '{module_name}' has no function '{func_name}'", text)
    return func


def load_module(model_file: ModelFile):
    """The user's model as an eval-mode nn.Module (entry point) or an ExportedProgram (.pt2)."""
    torch = _torch()
    if model_file.format == PT2:
        try:
            return torch.export.load(str(model_file.path))
        except Exception as err:
            raise ModelError(f"cannot load the torch.export archive ({one_line(err)})", model_file.path) from None
    func = _import_entry_point(str(model_file.path))
    try:
        model = func()
    except Exception as err:
        raise ModelError(f"the entry point raised {one_line(err)}", model_file.path) from None
    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"the entry point returned {type(model).__name__}, not a torch.nn.Module", model_file.path)
    return model.eval()


def _forward_inputs(model) -> list[str]:
    """Names of forward's positional parameters without defaults (the inputs to shape)."""
    params = inspect.signature(model.forward).parameters.values()
    return [p.name for p in params if p.default is p.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _program_inputs(program) -> dict[str, list]:
    """User inputs of an ExportedProgram: name -> dims (None where the dim is symbolic)."""
    specs = {s.arg.name for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"}
    found = {}
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in specs:
            found[node.name] = [d if isinstance(d, int) else None for d in node.meta["val"].shape]
    return found


def export_program(model, input_shapes: dict):
    """An ExportedProgram: a loaded .pt2 as saved (its dynamic dims are fixed on the ONNX graph, as
    for any ONNX model); an entry point's module exported at the --input-shape of each input."""
    torch = _torch()
    if isinstance(model, torch.export.ExportedProgram):
        return model
    names = _forward_inputs(model)
    missing = [n for n in names if n not in input_shapes]
    if missing or not names:
        raise UsageError("a PyTorch entry point needs --input-shape for each forward() input: "
                         + ", ".join(f"{n}:1x..." for n in (missing or ["NAME"])))
    example = tuple(torch.zeros(input_shapes[n], dtype=torch.float32) for n in names)
    try:
        return torch.export.export(model, example)
    except Exception as err:
        raise ConversionError(f"torch.export failed: {condense(err)}") from None


def export_onnx(program, out_path: Path) -> dict:
    """ExportedProgram -> ONNX at ONNX_OPSET with torch.onnx's dynamo exporter; the export record."""
    import contextlib
    import io

    torch = _torch()
    import onnxscript.optimizer

    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            exported = torch.onnx.export(program, (), dynamo=True, opset_version=ONNX_OPSET, optimize=False)
            onnxscript.optimizer.fold_constants(exported.model)  # constants only: no BatchNorm fusion
            onnxscript.optimizer.remove_unused_nodes(exported.model)
            exported.save(str(out_path), external_data=False)
    except Exception as err:
        raise ConversionError(f"torch.onnx export failed: {condense(err)}") from None
    return {"exporter": f"torch.onnx (dynamo) {torch.__version__}", "opset": ONNX_OPSET}


def reference_fn(program, output_names: list[str], model_path):
    """Runs the PyTorch program on float feeds; its flattened outputs named as the ONNX graph's.
    An input the program rejects (a fixed dim outside its exported range) is a ModelError."""
    torch = _torch()
    from torch.utils._pytree import tree_leaves

    module = program.module()
    names = list(_program_inputs(program))

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            with torch.no_grad():
                outputs = tree_leaves(module(*(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in names)))
        except Exception as err:
            shapes = ", ".join(f"{n} {'x'.join(map(str, feeds[n].shape))}" for n in names)
            raise ModelError(f"the PyTorch program does not run on {shapes} ({one_line(err)})", model_path) from None
        return {name: out.detach().numpy() for name, out in zip(output_names, outputs)}

    return run


def export_error(onnx_path: Path, feeds: list[dict], references: list[dict]) -> dict:
    """The export's own error: the exported ONNX graph (FP32, onnxruntime) vs the PyTorch outputs."""
    from edgekit.runtime.onnx import OnnxRunner

    runner = OnnxRunner(onnx_path)
    worst_abs, worst_rel = 0.0, 0.0
    for feed, ref in zip(feeds, references):
        got = runner.run(feed)
        for name, want in ref.items():
            diff = float(np.max(np.abs(got[name].astype(np.float64) - want), initial=0.0))
            worst_abs = max(worst_abs, diff)
            worst_rel = max(worst_rel, diff / max(float(np.max(np.abs(want), initial=0.0)), 1e-12))
    return {"samples": len(feeds), "max_abs_error": worst_abs, "max_relative_error": worst_rel}


def _source_digest(model_file: ModelFile) -> dict:
    """An entry point's module file and its sha256 (the report's model hash), once imported."""
    from edgekit.fsutil import sha256_file

    module = sys.modules.get(str(model_file.path).split(":")[0])
    found = getattr(module, "__file__", None)
    return {"module_file": found, "source_sha256": sha256_file(found)} if found else {}


def prepare(model_file: ModelFile, workdir: Path, input_shapes: dict, trust: bool, hint=None):
    """The PreparedSource of a PyTorch model (see `edgekit.sources.prepare`): exported to ONNX and
    prepared as an ONNX model (dynamic dims fixed), with the PyTorch program as the float reference.
    `trust` was checked with the model path (an entry point needs it)."""
    from edgekit.sources.onnx import prepare as prepare_onnx

    program = export_program(load_module(model_file), input_shapes)
    onnx_path = workdir / "model.onnx"
    record = export_onnx(program, onnx_path)
    if model_file.format == ENTRY:
        record.update(_source_digest(model_file))
    source = prepare_onnx(ModelFile(onnx_path, "onnx"), workdir, input_shapes, trust, hint)
    reference = reference_fn(program, [s.name for s in source.outputs], model_file.path)
    return replace(source, format=model_file.format, reference=reference, export=record)
