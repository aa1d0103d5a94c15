"""The command line: a thin click layer, and the only place where exceptions become exit codes.

Subcommands are imported only when invoked, so `edgekit --help` never imports TensorFlow.
"""

from __future__ import annotations

import importlib
import sys

import click

from edgekit import __version__, interrupts
from edgekit.errors import EdgekitError, Interrupted

# command name -> "module:attribute"; one module per command.
COMMANDS = {
    "compress": "edgekit.cli.compress:compress",
    "recipes": "edgekit.cli.recipes:recipes",
    "bench": "edgekit.cli.bench:bench",
    "devices": "edgekit.cli.devices:devices",
    "compare": "edgekit.cli.compare:compare",
    "debug": "edgekit.cli.debug:debug",
    "cache": "edgekit.cli.cache:cache",
    "batch": "edgekit.cli.batch:batch",
}

SHORT_HELP = {
    "compress": "Convert, quantize, validate and report a model.",
    "recipes": "List the preset recipes, or show one.",
    "bench": "Measure artifacts' latency on devices.",
    "devices": "List, add and check devices.",
    "compare": "Compare artifacts' outputs across backends.",
    "debug": "Per-layer INT8 error report.",
    "cache": "Inspect or clear the build cache.",
    "batch": "Compress and bench a fleet of models x devices (local pool or Ray).",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx):
        return sorted(name for name in COMMANDS if self._available(name))

    def _available(self, name):
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx, name):
        if name not in COMMANDS or not self._available(name):
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgekit")
def cli():
    """edgekit: make trained models small and fast for phones and edge boards.

    \b
    edgekit compress model/ --int8 --calibration calibration_data/digits --out build/
    edgekit bench build/ --device pixel7

    Exit codes are listed in the README (0 ok, 2 usage, 3 model, 4 data, 5 recipe,
    6 conversion, 7 output, 8 dependency, 9 device tool, 10 gate, 11 device
    inconclusive, 12 host key, 130 interrupted).
    """


def one_line(text: str) -> str:
    """Control characters (a newline in a file name) escaped, so an error stays one line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _outcome(argv: list[str] | None) -> tuple[int, str | None]:
    """Run the command; (exit code, line for stderr or None). Every EdgekitError becomes one line."""
    try:
        code = cli.main(args=argv, prog_name="edgekit", standalone_mode=False)
    except EdgekitError as err:
        return err.exit_code, f"edgekit: error: {one_line(str(err))}"
    except (click.exceptions.Abort, KeyboardInterrupt):
        return Interrupted.exit_code, "edgekit: interrupted"
    except click.ClickException as err:
        err.show()
        return err.exit_code, None
    return (code if isinstance(code, int) else 0), None


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn every EdgekitError into one line on stderr and its exit code.

    Ctrl-C and SIGTERM exit 130 (edgekit.interrupts): once the outcome is known they are held, so
    a late one can neither end the process by the signal nor change the exit code."""
    try:
        try:
            interrupts.install()
            code, message = _outcome(argv)
        except KeyboardInterrupt:  # one that landed while the outcome was being mapped
            code, message = Interrupted.exit_code, "edgekit: interrupted"
        interrupts.hold()
    except KeyboardInterrupt:  # one that landed between the two lines above
        interrupts.hold()
        code, message = Interrupted.exit_code, "edgekit: interrupted"
    if message:
        click.echo(message, err=True)
    sys.exit(code)
