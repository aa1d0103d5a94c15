"""Boards reachable over loopback: an OpenSSH server (sshd.py) the tests and the emulated aarch64
board (arm64.py, `scripts/arm64_board.sh`) run."""
