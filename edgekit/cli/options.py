"""Options and output helpers shared by commands: logging, --json/--quiet, progress."""

from __future__ import annotations

import contextlib
import json
import logging
import sys

import click


def output_options(func):
    """Add --json (machine summary on stdout) and --quiet (errors only on stderr)."""
    func = click.option("--quiet", "-q", is_flag=True, help="Print errors only.")(func)
    func = click.option("--json", "as_json", is_flag=True,
                        help="Print the machine-readable summary on stdout (logs go to stderr).")(func)
    return func


def setup_logging(quiet: bool) -> None:
    """Logs go to stderr: INFO normally, ERROR with --quiet."""
    from edgekit.logs import setup_logging as setup

    setup(logging.ERROR if quiet else logging.INFO)


def emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


@contextlib.contextmanager
def progress(quiet: bool):
    """Yield on_step(description): a rich spinner on a TTY, log lines otherwise, nothing if quiet."""
    if quiet:
        yield lambda description: None
        return
    if not sys.stderr.isatty():
        log = logging.getLogger("edgekit")
        yield lambda description: log.info("%s", description)
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("starting", total=None)
        yield lambda description: bar.update(task, description=description)
