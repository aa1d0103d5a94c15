"""Atomic output directories: all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.errors import OutputError
from edgekit.fsutil import atomic_output_dir


def test_success_replaces_whole_directory(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with atomic_output_dir(dest) as stage:
        (stage / "new.txt").write_text("new")
    assert sorted(p.name for p in dest.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failure_leaves_previous_output_untouched(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output_dir(dest) as stage:
            (stage / "half.bin").write_bytes(b"x")
            raise KeyboardInterrupt
    assert [p.name for p in dest.iterdir()] == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_unwritable_destination_is_an_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write output here"):
        with atomic_output_dir(blocker / "out"):
            pass


def test_stale_staging_dirs_are_cleaned(tmp_path):
    stale = tmp_path / ".edgekit-staging-out-abc"
    stale.mkdir()
    with atomic_output_dir(tmp_path / "out"):
        pass
    assert not stale.exists()


def test_a_second_interrupt_during_cleanup_still_removes_the_staging_dir(tmp_path, monkeypatch):
    import shutil as real_shutil

    from edgekit import fsutil

    calls = []
    original = real_shutil.rmtree

    def interrupted_once(path, ignore_errors=False):
        calls.append(path)
        if len(calls) == 1:
            (Path(path) / "a").unlink()  # part of the tree is gone when the second Ctrl-C lands
            raise KeyboardInterrupt
        original(path, ignore_errors=ignore_errors)

    monkeypatch.setattr(fsutil.shutil, "rmtree", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        with fsutil.atomic_output_dir(tmp_path / "out") as stage:
            (stage / "a").write_text("x")
            (stage / "b").write_text("y")
            raise KeyboardInterrupt
    assert len(calls) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".edgekit-")]
