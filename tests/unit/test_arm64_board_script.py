"""scripts/boards/arm64.py without building anything: usage, status, and `stop` ending only the
sshd it recorded (a recorded pid that is now another process is left alone)."""

from __future__ import annotations

import json
import subprocess

from scripts.boards import arm64 as board


def test_usage_status_and_stop_spares_other_processes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEKIT_ARM64_BOARD_DIR", str(tmp_path))
    assert board.main([]) == 2 and board.main(["reboot"]) == 2
    assert "start|stop|status|build" in capsys.readouterr().err
    assert board.main(["status"]) == 3
    assert "(not built)" in capsys.readouterr().out and board.build_dir().parent == tmp_path
    other = subprocess.Popen(["sleep", "30"])  # a pid the board did not start (reused pid)
    try:
        (tmp_path / "sshd").mkdir()
        board.state_file().write_text(json.dumps(
            {"pid": other.pid, "sshd_config": str(tmp_path / "sshd" / "sshd_config")}))
        assert board.running() is None and board.stop() is False
        assert board.main(["stop"]) == 0 and "not running" in capsys.readouterr().out
        assert other.poll() is None  # still alive
    finally:
        other.kill()
        other.wait()
