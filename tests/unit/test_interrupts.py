"""edgekit.interrupts: Ctrl-C while the CLI loads, before and during the commit (in-process)."""

from __future__ import annotations

import os
import signal

import pytest

from edgekit import fsutil, interrupts


@pytest.fixture(autouse=True)
def _restore():
    yield
    interrupts.reset()


def test_ctrl_c_while_the_cli_loads_exits_130(capfd):
    from edgekit.cli import main

    interrupts.defer()  # what `python -m edgekit` / the console script do before importing the CLI
    os.kill(os.getpid(), signal.SIGINT)  # recorded, not raised
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 130
    assert "edgekit: interrupted" in capfd.readouterr().err


def _old(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "a").write_text("old")
    return dest


def test_an_interrupt_before_the_swap_leaves_the_old_output(tmp_path):
    dest = _old(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with fsutil.atomic_output_dir(dest, final=True) as stage:
            (stage / "a").write_text("new")
            os.kill(os.getpid(), signal.SIGINT)
    assert (dest / "a").read_text() == "old"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".edgekit-")]


@pytest.mark.parametrize("cli", [False, True], ids=["library", "cli"])
def test_an_interrupt_during_the_swap_comes_after_it(tmp_path, monkeypatch, cli):
    """During the swap it is held: the new output is complete; a library caller then gets the
    KeyboardInterrupt, the CLI (final commit) ignores it: the run is done."""
    dest = _old(tmp_path)
    publish = fsutil._publish

    def interrupted_publish(staging, target):
        os.kill(os.getpid(), signal.SIGINT)
        publish(staging, target)

    monkeypatch.setattr(fsutil, "_publish", interrupted_publish)
    if cli:
        interrupts.install()
        with fsutil.atomic_output_dir(dest, final=True) as stage:
            (stage / "a").write_text("new")
        assert interrupts.held()
    else:
        with pytest.raises(KeyboardInterrupt):
            with fsutil.atomic_output_dir(dest, final=True) as stage:
                (stage / "a").write_text("new")
        assert not interrupts.held() and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert (dest / "a").read_text() == "new"
