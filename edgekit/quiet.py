"""Keep stdout clean for `--json`: native libraries (the TFLite converter) print to fd 1."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stdout_to_stderr():
    """Send everything written to file descriptor 1 (Python or C++) to stderr meanwhile."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real fd 1 (embedded use): nothing to redirect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def native_stderr_captured():
    """Collect what native code writes to fd 2 meanwhile; yields a list that gets the text."""
    import tempfile

    captured: list[str] = []
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield captured
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))
