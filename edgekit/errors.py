"""The one exception tree. Each class carries the process exit code the CLI turns it into.

Exit codes (stable, documented in the README):

====  =============================================================
0     success
1     internal error (a bug: the traceback is kept)
2     usage error (bad flags or arguments)
3     bad model input (missing, unreadable, corrupt, unsafe)
4     bad calibration / validation data
5     bad recipe (unknown key, wrong type, unknown preset)
6     conversion failed (converter or quantizer error or crash)
7     output not writable
8     missing optional dependency (install hint in the message)
9     a tool on the device failed (harness, benchmark_model, trtexec)
10    a gate was missed (accuracy, agreement, size, latency, speed-up, fallback confirmation)
11    device inconclusive (unreachable, timed out, connection lost)
12    device host key unknown or changed (refused)
130   interrupted (Ctrl-C / SIGTERM)
====  =============================================================
"""

from __future__ import annotations

import re
from pathlib import Path

_SENTENCE_END = re.compile(r"[.;!?](?=\s)")


def condense(text: object, limit: int = 300, *, last: bool = False) -> str:
    """The first (last: the last) non-empty line of `text` (whitespace collapsed) in at most
    `limit` characters (default 300; an exception without a message gives its class name; no line
    at all gives "(no output)" with last=True): when longer, cut after its last whole sentence
    that keeps a third of the limit, else at a word boundary with ' …' appended; never mid-word.
    The one condenser of library and tool messages into one-line errors."""
    lines = [" ".join(ln.split()) for ln in str(text).splitlines() if ln.strip()]
    if last and not lines:
        return "(no output)"
    line = (lines[-1] if last else lines[0]) if lines else ""
    if not line and isinstance(text, BaseException):
        return type(text).__name__
    if len(line) <= limit:
        return line
    ends = [m.end() for m in _SENTENCE_END.finditer(line, 0, limit)]
    if ends and ends[-1] >= limit // 3:
        return line[:ends[-1]]
    cut = line.rfind(" ", 0, limit - 1)
    return (line[:cut] if cut > 0 else line[:limit - 2]).rstrip(" ,;:") + " …"


class EdgekitError(Exception):
    """Root of every error edgekit reports to a user as one line."""

    exit_code = 1

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = str(path) if path is not None else None
        self.problem = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class UsageError(EdgekitError):
    exit_code = 2


class ModelError(EdgekitError):
    exit_code = 3


class CalibrationDataError(EdgekitError):
    exit_code = 4


class RecipeError(EdgekitError):
    exit_code = 5


class ConversionError(EdgekitError):
    exit_code = 6


class OutputError(EdgekitError):
    exit_code = 7


class MissingDependencyError(EdgekitError):
    exit_code = 8


class DeviceToolError(EdgekitError):
    exit_code = 9


class GateFailed(EdgekitError):
    exit_code = 10


class DeviceInconclusive(EdgekitError):
    exit_code = 11


class HostKeyRefused(EdgekitError):
    exit_code = 12


class Interrupted(EdgekitError):
    exit_code = 130


# One precedence when several devices fail in one run (`bench`, `devices --check`): a missed gate,
# then a tool that failed on a device (the artifact is at fault), then a refused host key, then an
# inconclusive device (unreachable, timed out). Statuses as report rows name them.
DEVICE_OUTCOMES: tuple[tuple[str, type[EdgekitError]], ...] = (
    ("gate_failed", GateFailed), ("tool_failed", DeviceToolError),
    ("host_key_refused", HostKeyRefused), ("inconclusive", DeviceInconclusive))


def device_status(err: EdgekitError) -> str:
    """The report status of a device error (an unknown kind counts as a tool failure)."""
    return next((status for status, cls in DEVICE_OUTCOMES if isinstance(err, cls)), "tool_failed")


def worst_outcome(statuses) -> tuple[str, type[EdgekitError]] | None:
    """(status, error class) of the worst of `statuses` by DEVICE_OUTCOMES; None when none failed."""
    present = set(statuses)
    return next(((status, cls) for status, cls in DEVICE_OUTCOMES if status in present), None)


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "internal error (a bug: traceback kept)",
    UsageError.exit_code: "usage error",
    ModelError.exit_code: "bad model input",
    CalibrationDataError.exit_code: "bad calibration/validation data",
    RecipeError.exit_code: "bad recipe",
    ConversionError.exit_code: "conversion failed",
    OutputError.exit_code: "output not writable",
    MissingDependencyError.exit_code: "missing optional dependency",
    DeviceToolError.exit_code: "a tool on the device failed",
    GateFailed.exit_code: "a gate was missed",
    DeviceInconclusive.exit_code: "device inconclusive (unreachable, timeout, lost connection)",
    HostKeyRefused.exit_code: "device host key unknown or changed",
    Interrupted.exit_code: "interrupted",
}
