"""`edgekit compare A B [C...] --data DIR`: cross-backend output comparison (exit 10 on FAIL)."""

from __future__ import annotations

import json

import click

from edgekit.errors import GateFailed


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@click.command()
@click.argument("artifacts", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False),
              help="Directory of held-out .npy/.npz samples.")
@click.option("--atol", type=float, help="Absolute tolerance [default: recipe's, else 1e-4].")
@click.option("--rtol", type=float, help="Relative tolerance [default: recipe's, else 1e-3].")
@click.option("--recipe", "-r", help="Recipe file or preset whose `compare:` section sets (per-output) tolerances.")
@click.option("--threads", type=int, default=1, show_default=True, help="CPU threads per runtime.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(artifacts, data_dir, atol, rtol, recipe, threads, as_json):
    """Run the same inputs through each artifact (.tflite, .onnx) and compare to the first.

    PASS when |test - ref| <= atol + rtol * |ref| for every element of every output.
    """
    from edgekit.bench.compare import compare_artifacts
    from edgekit.recipe.loader import load_recipe

    spec = load_recipe(recipe)[0].compare
    atol = spec.atol if atol is None else atol
    rtol = spec.rtol if rtol is None else rtol
    per_output = {name: (t.atol, t.rtol) for name, t in spec.outputs.items()}
    result = compare_artifacts(list(artifacts), data_dir, atol=atol, rtol=rtol, threads=threads,
                               per_output=per_output)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        click.echo(f"reference: {result.reference}  samples: {result.samples}  atol={atol:g} rtol={rtol:g}")
        header = ("artifact", "output", "max_abs", "max_rel", "cosine", "sqnr_db", "top1", "result")
        rows = [header] + [
            (o.artifact, o.output, _fmt(o.max_abs_error), _fmt(o.max_rel_error), _fmt(o.cosine), _fmt(o.sqnr_db),
             _fmt(o.top1_agreement), "PASS" if o.passed else "FAIL")
            for o in result.outputs
        ]  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for row in rows:
            click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    if not result.passed:
        failed = [f"{o.artifact}:{o.output}" for o in result.outputs if not o.passed]
        raise GateFailed(f"outputs differ beyond atol={atol:g} rtol={rtol:g}: {', '.join(failed)}")
