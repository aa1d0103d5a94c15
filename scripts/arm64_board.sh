#!/bin/sh
# An emulated aarch64 board on loopback ssh: scripts/arm64_board.sh start|stop|status|build
# (see scripts/boards/arm64.py). Uses the repository's venv python when there is one.
here=$(cd "$(dirname "$0")" && pwd)
python=${EDGEKIT_PYTHON:-}
if [ -z "$python" ]; then
  for candidate in "$here/../.venv/bin/python" "$(command -v python3)"; do
    if [ -x "$candidate" ]; then python=$candidate; break; fi
  done
fi
cd "$here/.." && exec "$python" -m scripts.boards.arm64 "$@"
