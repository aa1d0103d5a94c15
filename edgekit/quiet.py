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
