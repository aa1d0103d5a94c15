"""`edgekit compress`: flags become recipe overrides; the pipeline does the work."""

from __future__ import annotations

from pathlib import Path

import click

from edgekit.cli.options import (TargetName, data_options, data_overrides, emit_json, executor_options,
                                 gate_budget_overrides, gate_options, gate_overrides, output_options, progress,
                                 setup_logging)


def build_overrides(opts: dict) -> dict:
    """Recipe overrides from the flags that were given (None = not given)."""
    over = data_overrides(opts)
    precisions = [p for p in ("int8", "fp16", "dynamic") if opts[p]]
    if precisions:  # flags add to the recipe's precisions
        over["precisions"] = precisions
    if opts["target"]:
        over["targets"] = list(opts["target"])
    val = {k: v for k, v in {"threads": opts["threads"], "runs": opts["runs"],
                             "warmup_runs": opts["warmup"]}.items() if v is not None}
    if val:
        over["validation"] = val
    gates = {**gate_budget_overrides(opts),
             **{k: v for k, v in {"max_size_bytes": opts["max_size"],
                                  "max_latency_ms": opts["max_latency_ms"]}.items() if v is not None}}
    extra = gate_overrides(opts)
    gates.update(extra.pop("gates", {}))
    if gates:
        over["gates"] = gates
    over.update(extra)
    fallback = {k: v for k, v in {"enabled": False if opts["no_fallback"] else None,
                                  "max_float_layers": opts["max_float_layers"]}.items() if v is not None}
    if fallback:
        over["fallback"] = fallback
    return over


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--int8", is_flag=True, help="Full-integer INT8 (needs --calibration).")
@click.option("--fp16", is_flag=True, help="FP16 weights.")
@click.option("--dynamic", is_flag=True, help="Dynamic-range: int8 weights, float activations.")
@click.option("--out", "-o", type=click.Path(path_type=Path),
              help="Output directory [default: MODEL's name + '-edgekit' beside it].")
@click.option("--recipe", "-r", help="Recipe file or preset name (see `edgekit recipes`).")
@data_options
@click.option("--target", "-t", multiple=True, type=TargetName(),
              help="Artifact family, repeatable [default: the model format's own: tflite for TensorFlow, onnx for ONNX].")
@click.option("--threads", type=int, help="Host validation threads [default: 1].")
@click.option("--runs", type=int, help="Timed host runs [default: 50].")
@click.option("--warmup", type=int, help="Warm-up host runs [default: 10].")
@click.option("--max-accuracy-drop", type=float, help="Gate: accuracy drop in points (needs labels).")
@click.option("--min-agreement", type=float, help="Gate: top-1 agreement with FP32, 0-1.")
@click.option("--max-size", type=int, help="Gate: artifact bytes.")
@click.option("--max-latency-ms", type=float, help="Gate: host p50 latency.")
@click.option("--min-sqnr", type=float, help="Gate: output SQNR vs the float model, dB.")
@gate_options
@click.option("--no-fallback", is_flag=True, help="Never keep layers in float to meet an accuracy gate.")
@click.option("--max-float-layers", type=int, help="Float fallback: at most this many layers [default: 10].")
@executor_options("the float-fallback search", "in this process, no pool")
@click.option("--device", "devices", multiple=True,
              help="Then bench on this device (inventory name, repeatable); the first builds TensorRT engines.")
@click.option("--inventory", type=click.Path(), help="devices.yaml [default: ./devices.yaml, then user config].")
@click.option("--no-cache", is_flag=True, help="Rebuild even when an identical build is cached.")
@click.option("--allow-low-float-accuracy", is_flag=True,
              help="Build even when the float model is not above chance on the labels (exit 4 otherwise).")
@click.option("--explain-preprocessing", is_flag=True,
              help="Print the inferred, probed and final preprocessing; convert nothing.")
@output_options
@click.pass_context
def compress(ctx, model, out, recipe, trust_model, devices, inventory, no_cache, allow_low_float_accuracy,
             explain_preprocessing, jobs, ray_address, as_json, quiet, **opts):
    """Convert MODEL (SavedModel dir, .keras, .onnx, .pt2, package.module:function) to validated
    artifacts with a report."""
    from edgekit.pipeline.compress import run_compress
    from edgekit.recipe.loader import load_recipe
    from edgekit.report.markdown import render_markdown

    setup_logging(quiet)
    opts.update(recipe=recipe)
    overrides = build_overrides(opts)
    resolved, origin = load_recipe(recipe, overrides)
    flags = frozenset(overrides.get("preprocess", {}))
    if explain_preprocessing:
        return _explain(model, resolved, trust_model, flags, as_json, quiet)
    out = out or model.absolute().parent / f"{model.name.split('.')[0] or 'model'}-edgekit"
    with progress(quiet or as_json) as on_step:
        report, cached = run_compress(model, out, resolved, origin, trust_model, on_step,
                                      device=devices[0] if devices else None, inventory=inventory,
                                      use_cache=not no_cache, preprocess_flags=flags,
                                      allow_low_float_accuracy=allow_low_float_accuracy, jobs=jobs,
                                      ray=ray_address)
    if as_json:
        emit_json(report.model_dump(mode="json"))
    elif not quiet:
        click.echo(render_markdown(report))
        click.echo(f"wrote {out}/ (report.json, report.md, report.html)" + (" from the cache" if cached else ""))
    if devices:  # same measurements as `edgekit bench OUT --device ...`, into OUT/bench
        from edgekit import interrupts
        from edgekit.cli.bench import bench

        interrupts.release()  # held since OUT was committed; a Ctrl-C from here interrupts the bench

        ctx.invoke(bench, build=Path(out), devices=devices, inventory=inventory, threads=resolved.validation.threads,
                   as_json=False, quiet=quiet)


def _explain(model, recipe, trust_model, flags, as_json, quiet) -> None:
    from edgekit.pipeline.explain import explain_preprocessing
    from edgekit.report.preprocessing import preprocessing_lines

    with progress(quiet or as_json) as on_step:
        info = explain_preprocessing(model, recipe, trust_model, flags, on_step)
    if as_json:
        emit_json(info)
    else:
        click.echo("\n".join([f"# Preprocessing for `{model}`", "", *preprocessing_lines(info)]))
