"""`edgekit recipes`: list the presets; `edgekit recipes show NAME` prints one, resolved."""

from __future__ import annotations

import click

from edgekit.cli.options import emit_json


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list.")
@click.pass_context
def recipes(ctx, as_json):
    """List the preset recipes."""
    if ctx.invoked_subcommand:
        return
    from edgekit.recipe.loader import load_recipe, preset_names

    rows = []
    for name in preset_names():
        recipe, _ = load_recipe(name)
        rows.append({"name": name, "precisions": recipe.precisions, "targets": recipe.targets,
                     "description": recipe.description})
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']:<16} {','.join(row['precisions']):<16} {row['description']}")


@recipes.command()
@click.argument("name")
def show(name):
    """Print recipe NAME (a preset or a file) with every default filled in."""
    from edgekit.recipe.loader import load_recipe, recipe_to_yaml

    recipe, origin = load_recipe(name)
    click.echo(f"# {origin}")
    click.echo(recipe_to_yaml(recipe), nl=False)
