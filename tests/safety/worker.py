"""Corpus worker: runs `edgekit.cli.main(argv)` for each case read from stdin, in this process.

Protocol: one JSON case per stdin line ({"id", "argv"}); one JSON result per stdout line
({"id", "code", "stderr", "seconds", "heavy_imports"}). Each case's fd 1 and fd 2 (Python and
native writes, and spawned children's) go to temporary files. An exception that escapes
`main` is what the real CLI turns into a traceback and exit 1: reported the same way here.
A native crash kills this process: the parent sees it as death by signal for the running case.
"""

from __future__ import annotations

import builtins
import json
import os
import sys
import tempfile
import time
import traceback

HEAVY_MODULES = {"tensorflow", "keras", "onnx", "onnxruntime", "tf2onnx", "ai_edge_litert"}


def _run(cli_main, argv: list[str]) -> int:
    try:
        cli_main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - an escaped exception is the finding we report
        traceback.print_exc()
        return 1
    finally:
        from edgekit import interrupts

        interrupts.reset()  # main() leaves Ctrl-C held, as the process it expects to end
    return 0


def serve() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    from edgekit.cli import main as cli_main

    imported: set[str] = set()
    real_import = builtins.__import__

    def tracking_import(name, *args, **kwargs):
        if name.partition(".")[0] in HEAVY_MODULES:
            imported.add(name.partition(".")[0])
        return real_import(name, *args, **kwargs)

    builtins.__import__ = tracking_import
    for line in sys.stdin:
        case = json.loads(line)
        imported.clear()
        with tempfile.TemporaryFile() as out_sink, tempfile.TemporaryFile() as err_sink:
            saved = os.dup(1), os.dup(2)
            os.dup2(out_sink.fileno(), 1)
            os.dup2(err_sink.fileno(), 2)
            start = time.monotonic()
            try:
                code = _run(cli_main, case["argv"])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])
            seconds = time.monotonic() - start
            err_sink.seek(0)
            stderr = err_sink.read(1 << 16).decode("utf-8", "replace")
        protocol.write(json.dumps({"id": case["id"], "code": code, "stderr": stderr, "seconds": seconds,
                                   "heavy_imports": sorted(imported)}) + "\n")


if __name__ == "__main__":
    serve()
