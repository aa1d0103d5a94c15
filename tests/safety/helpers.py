"""Assertions shared by the safety tests: one-line errors, untouched outputs, native log noise."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

# What TensorFlow's C++ runtime prints to fd 2 while it is imported (absl log lines); not edgekit's.
NATIVE_NOISE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\]|WARNING: All log messages before absl"
                          r"|To enable the following instructions|fully_quantize: )")
ERROR_PREFIX = "edgekit: error: "


def snapshot(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder`."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def edgekit_lines(stderr: str) -> list[str]:
    """stderr without TensorFlow's native log lines."""
    return [line for line in stderr.splitlines() if line.strip() and not NATIVE_NOISE.match(line)]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(ERROR_PREFIX)]


def assert_one_line_error(code: int, stderr: str, want_code: int, path) -> str:
    """The run exited `want_code` with exactly one line, `edgekit: error: PATH: problem`; returns it."""
    lines = edgekit_lines(stderr)
    assert code == want_code, f"exit {code}, wanted {want_code}; stderr:\n{stderr}"
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith(f"{ERROR_PREFIX}{path}: "), lines[0]
    return lines[0]


def staging_leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.glob(".edgekit-*")]
