"""`edgekit cache info|clear`: the content-addressed build cache."""

from __future__ import annotations

import click

from edgekit.cli.options import emit_json


@click.group()
def cache():
    """Inspect or clear the build cache ($EDGEKIT_CACHE_DIR, default ~/.cache/edgekit)."""


@cache.command("info")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info_cmd(as_json):
    """Where the cache is, how many entries and bytes it holds, and its cap."""
    from edgekit.pipeline import cache as store

    data = store.info()
    if as_json:
        emit_json(data)
    else:
        click.echo(f"{data['path']}: {data['entries']} entries, {data['bytes'] / 2**20:.1f} MiB "
                   f"(cap {data['max_bytes'] / 2**20:.0f} MiB)")


@cache.command("clear")
def clear_cmd():
    """Remove every cache entry."""
    from edgekit.pipeline import cache as store

    click.echo(f"removed {store.clear()} entries from {store.cache_dir()}")
