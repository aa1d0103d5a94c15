"""`edgekit batch FLEET.yaml`: every model's compress and every device bench as tasks."""

from __future__ import annotations

from pathlib import Path

import click

from edgekit.cli.options import emit_json, executor_options, output_options, progress, setup_logging


@click.command()
@click.argument("fleet", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path),
              help="Output directory [default: FLEET's name + '-fleet' beside it].")
@executor_options("the tasks")
@click.option("--no-cache", is_flag=True, help="Rebuild even the models whose build is cached.")
@output_options
def batch(fleet, out, jobs, ray_address, no_cache, as_json, quiet):
    """Compress every model of FLEET.yaml and bench it on every listed device; write fleet.json,
    fleet.md and fleet.html (a model x device table, accuracy drop vs latency per model).

    Exit 0 when every entry completed; else the first failed entry's code (10 for a missed gate).
    """
    from edgekit.executor import open_executor
    from edgekit.fleet.report import markdown
    from edgekit.fleet.run import run_fleet

    setup_logging(quiet)
    out = out or fleet.absolute().parent / f"{fleet.name.split('.')[0] or 'fleet'}-fleet"
    with open_executor(jobs, ray_address) as executor, progress(quiet or as_json) as on_step:
        document = run_fleet(fleet, out, executor, use_cache=not no_cache, on_step=on_step)
    if as_json:
        emit_json(document)
    elif not quiet:
        click.echo(markdown(document))
        click.echo(f"wrote {out}/ (fleet.json, fleet.md, fleet.html)")
