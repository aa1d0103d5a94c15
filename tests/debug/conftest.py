"""Shared fixtures: the INT8-hostile digits CNN (scripts/models/hostile.py), trained once."""

from __future__ import annotations

import pytest

from scripts.models import hostile


@pytest.fixture(scope="session")
def hostile_keras(tmp_path_factory):
    """hostile.keras: digits CNN with the planted outlier_up/outlier_down pair (~10 s to train)."""
    return hostile.save_hostile(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="session")
def planted():
    return set(hostile.PLANTED)


@pytest.fixture(scope="session")
def edgekit_cli_module():
    """Run `edgekit ARGS` in-process (usable from module-scoped fixtures); CliResult(code, out, err)."""
    import contextlib
    import io

    from edgekit import interrupts
    from edgekit.cli import main
    from tests.conftest import CliResult

    def run(*args) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                interrupts.reset()  # main() leaves Ctrl-C held, as the process it expects to end
        return CliResult(code, out.getvalue(), err.getvalue())

    return run
