"""The 'edgekit' logger: one stderr handler, INFO normally, ERROR when quiet."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: int = logging.INFO) -> None:
    logger = logging.getLogger("edgekit")
    logger.handlers[:] = []
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("edgekit: %(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    root = logging.getLogger()
    if not root.handlers:  # third-party warnings on the root logger (onnxruntime's quantizer) stay quiet
        root.addHandler(logging.NullHandler())
