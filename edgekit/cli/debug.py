"""`edgekit debug`: per-layer INT8 error report (and float fallback with a budget)."""

from __future__ import annotations

from pathlib import Path

import click

from edgekit.cli.options import (TargetName, data_options, data_overrides, emit_json, executor_options,
                                 gate_budget_overrides, gate_options, gate_overrides, output_options, progress,
                                 setup_logging)
from edgekit.errors import UsageError


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--int8", is_flag=True, help="Debug full-integer INT8 (the only mode; accepted for clarity).")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Output directory (debug.json, debug.md, debug.html).")
@click.option("--target", "-t", type=TargetName(),
              help="The target to debug [default: the model format's own: tflite for TensorFlow, onnx for ONNX].")
@click.option("--recipe", "-r", help="Recipe file or preset name (preprocessing, calibration, gates, fallback).")
@data_options
@click.option("--max-accuracy-drop", type=float, help="Fallback budget: accuracy drop in points (needs labels).")
@click.option("--min-agreement", type=float, help="Fallback budget: top-1 agreement with float, 0-1.")
@click.option("--min-sqnr", type=float, help="Fallback budget: output SQNR in dB.")
@gate_options
@click.option("--max-float-layers", type=int, help="Fallback: most layers kept float [default: the recipe's, 10].")
@click.option("--time-budget", type=float,
              help="Seconds for the whole analysis [default: the recipe's fallback.time_budget_s, 600].")
@executor_options("the sensitivity and fallback candidates", "in this process, no pool")
@output_options
def debug(model, int8, out, target, recipe, max_float_layers, time_budget, jobs, ray_address, trust_model, as_json,
          quiet, **opts):
    """Per-layer INT8 error of MODEL, layers ranked by measured sensitivity; with a budget (the
    recipe's accuracy gates or the flags) also the smallest float fallback that meets it (exit 10
    with the best point when none does)."""
    from edgekit.debug.report import render_markdown
    from edgekit.debug.session import run_debug
    from edgekit.pipeline.fallback_stage import budget_of
    from edgekit.recipe.loader import load_recipe

    setup_logging(quiet)
    over = {**data_overrides(opts), **gate_overrides(opts), "precisions": ["int8"]}
    over["gates"] = {**over.get("gates", {}), **gate_budget_overrides(opts)}
    fallback = {k: v for k, v in {"max_float_layers": max_float_layers, "time_budget_s": time_budget}.items()
                if v is not None}
    if fallback:
        over["fallback"] = fallback
    resolved, _ = load_recipe(recipe, over)
    if resolved.calibration.source is None:
        raise UsageError("debug needs calibration data: --calibration DIR (or calibration.source in the recipe)")
    with progress(quiet or as_json) as on_step:
        document = run_debug(model, out, resolved, target=target, budget=budget_of(resolved),
                             trust_model=trust_model, on_step=on_step, jobs=jobs, ray=ray_address)
    if as_json:
        emit_json(document)
    elif not quiet:
        click.echo(render_markdown(document))
        click.echo(f"wrote {out}/ (debug.json, debug.md, debug.html)")
