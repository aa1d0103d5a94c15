"""`edgekit bench` end to end: real harness runs on the host and over a real loopback sshd."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest

from edgekit.cli import main
from tests.bench.conftest import ssh_entry
from scripts.boards.sshd import free_port


def bench(*args) -> int:
    with pytest.raises(SystemExit) as info:
        main(["bench", *map(str, args)])
    return info.value.code


def load(out):
    return json.loads((out / "bench.json").read_text())


def test_bench_ssh_and_local_real_numbers(build_dir, sshd, write_inventory, tmp_path, capsys):
    inventory = write_inventory({"board": ssh_entry(sshd, tmp_path / "remote")})
    out = tmp_path / "report"
    code = bench(build_dir, "--device", "board", "--device", "local", "--inventory", inventory,
                 "--runs", 15, "--warmup", 2, "--threads", 1, "--out", out, "--json")
    assert code == 0
    report = load(out)
    assert report["schema_version"] == 1 and report["status"] == "ok"
    assert {(r["device"], r["artifact"]) for r in report["rows"]} == {
        (d, a) for d in ("board", "local")
        for a in ("model_fp32.tflite", "model_int8.tflite", "model_fp32.onnx")}
    for row in report["rows"]:
        lat = row["latency"]
        assert row["status"] == "ok" and lat["runs"] == 15 and len(row["latencies_ms"]) == 15
        assert 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
        assert lat["cold_start_ms"] > 0 and lat["peak_rss_mb"] > 0 and lat["threads"] == 1
        assert row["tool_versions"]["python"] and row["runtime"]
    ups = {u["device"]: u for u in report["speedups"]}
    assert set(ups) == {"board", "local"} and all(u["speedup"] > 0 for u in ups.values())
    assert ups["board"]["fp32_artifact"] == "model_fp32.tflite" and ups["board"]["same_format"]
    board = next(d for d in report["devices"] if d["name"] == "board")
    assert board["kind"] == "ssh" and board["facts"]["os"]
    md = (out / "bench.md").read_text()
    assert "INT8 vs FP32 speed-up" in md and "| board | model_int8.tflite |" in md
    html = (out / "bench.html").read_text()
    images = html.count("data:image/png;base64,")
    assert images == 3  # the speed-up bars + one latency distribution per device
    png = html.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(png).startswith(b"\x89PNG")
    summary = json.loads(capsys.readouterr().out)
    assert summary["exit_code"] == 0 and "latencies_ms" not in summary["rows"][0]


def test_unreachable_device_is_inconclusive_others_kept(build_dir, write_inventory, tmp_path, capsys):
    inventory = write_inventory({"gone": {
        "kind": "ssh", "address": "127.0.0.1", "connect_timeout_s": 3,
        "ssh_options": ["-p", str(free_port()), "-o", f"UserKnownHostsFile={tmp_path}/kh"]}})
    out = tmp_path / "report"
    start = time.monotonic()
    code = bench(build_dir, "--device", "gone", "--device", "local", "--inventory", inventory,
                 "--runs", 5, "--out", out)
    assert code == 11 and time.monotonic() - start < 30
    rows = load(out)["rows"]
    assert {r["status"] for r in rows if r["device"] == "local"} == {"ok"}
    gone = [r for r in rows if r["device"] == "gone"]
    assert len(gone) == 3 and {r["status"] for r in gone} == {"inconclusive"}
    assert "Connection refused" in gone[0]["error"]
    err = capsys.readouterr().err
    assert "inconclusive" in err and "Connection refused" in err
    assert "INCONCLUSIVE" in (out / "bench.md").read_text()


def test_unknown_host_key_exit_12_with_fingerprint(build_dir, fresh_sshd, write_inventory,
                                                   tmp_path, capsys):
    inventory = write_inventory({"board": ssh_entry(fresh_sshd, tmp_path / "remote")})
    code = bench(build_dir, "--device", "board", "--inventory", inventory, "--out", tmp_path / "r")
    assert code == 12
    assert fresh_sshd.host_fingerprint in capsys.readouterr().err
    # explicit first-contact trust then works
    code = bench(build_dir, "--device", "board", "--inventory", inventory, "--runs", 3,
                 "--accept-new-host-key", "--out", tmp_path / "r")
    assert code == 0


def test_missed_gate_exit_10_wins_over_inconclusive(build_dir, write_inventory, tmp_path):
    inventory = write_inventory({"gone": {
        "kind": "ssh", "address": "127.0.0.1", "connect_timeout_s": 3,
        "ssh_options": ["-p", str(free_port()), "-o", f"UserKnownHostsFile={tmp_path}/kh"]}})
    out = tmp_path / "report"
    code = bench(build_dir, "--device", "local", "--device", "gone", "--inventory", inventory,
                 "--runs", 5, "--max-latency-ms", 1e-9, "--min-speedup", 1000, "--out", out)
    assert code == 10
    report = load(out)
    local = [r for r in report["rows"] if r["device"] == "local"]
    assert {r["status"] for r in local} == {"gate_failed"}
    assert {g["gate"] for g in report["gates"]} == {"max_latency_ms(p50_ms)", "min_speedup"}
    assert not any(g["passed"] for g in report["gates"])


def test_gates_pass_exit_0(build_dir, tmp_path):
    code = bench(build_dir, "--runs", 5, "--max-latency-ms", 10_000, "--latency-stat", "p99",
                 "--min-speedup", 0.001, "--out", tmp_path / "r")
    assert code == 0 and all(g["passed"] for g in load(tmp_path / "r")["gates"])


def test_sustained_mode_timeline_and_throttling(build_dir, tmp_path):
    out = tmp_path / "report"
    code = bench(build_dir / "model_fp32.onnx", "--duration", "1s", "--warmup", 1, "--out", out)
    assert code == 0
    (row,) = load(out)["rows"]
    assert row["sustained_s"] == 1.0 and row["timestamps_s"][-1] < 1.0 < row["timestamps_s"][-1] + 0.1
    assert row["throttling"]["slowdown"] is not None
    assert (out / "bench.html").read_text().count("data:image/png;base64,") == 2


def test_hanging_run_hits_timeout(build_dir, sshd, write_inventory, tmp_path):
    inventory = write_inventory({"board": ssh_entry(sshd, tmp_path / "remote")})
    start = time.monotonic()
    code = bench(build_dir / "model_fp32.onnx", "--device", "board", "--inventory", inventory,
                 "--duration", "60s", "--timeout", 2, "--out", tmp_path / "r")
    assert code == 11 and time.monotonic() - start < 25
    (row,) = load(tmp_path / "r")["rows"]
    assert row["status"] == "inconclusive" and "timed out after 2s" in row["error"]


def test_connection_lost_mid_run_keeps_other_device(build_dir, fresh_sshd, write_inventory, tmp_path):
    fresh_sshd.trust_host_key()
    inventory = write_inventory({"board": ssh_entry(fresh_sshd, tmp_path / "remote")})
    dropped = []

    def drop_when_running():
        if fresh_sshd.wait_for_command("--result"):
            time.sleep(0.5)
            fresh_sshd.drop_connections()
            dropped.append(time.monotonic())

    killer = threading.Thread(target=drop_when_running)
    killer.start()
    code = bench(build_dir / "model_fp32.onnx", "--device", "board", "--device", "local",
                 "--inventory", inventory, "--duration", "3s", "--out", tmp_path / "r")
    killer.join()
    assert dropped, "the harness never ran on the board"
    assert code == 11
    rows = {r["device"]: r for r in load(tmp_path / "r")["rows"]}
    assert rows["board"]["status"] == "inconclusive" and rows["local"]["status"] == "ok"
    assert len(rows["local"]["latencies_ms"]) > 10


def test_bad_duration_is_usage_error(build_dir, capsys):
    assert bench(build_dir, "--duration", "ten minutes") == 2
    assert "--duration" in capsys.readouterr().err
