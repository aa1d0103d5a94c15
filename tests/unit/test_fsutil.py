"""Atomic output directories: all or nothing."""

from __future__ import annotations

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
