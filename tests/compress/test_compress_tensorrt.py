"""`edgekit compress -t tensorrt --device NAME`: the engine is built on the board over ssh.

TensorRT cannot run here (no NVIDIA GPU), so the board's trtexec is a RECORDED STAND-IN: it checks
the argv edgekit gives it, writes the engine file it was asked for, and prints a real recorded
trtexec log. The rest is real: the loopback sshd, ssh/scp, push with sha256 check, the remote
run, the pull of the engine and log, and the log parser.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from tests.bench.conftest import ssh_entry
from tests.conftest import DIGITS_DATA
from tests.devices.conftest import sshd  # noqa: F401 (fixture)

RECORDED_LOG = Path(__file__).parents[1] / "bench" / "data" / "trtexec" / "jetson_nano_trt8001_load_engine.log"


def _standin(path: Path) -> Path:
    path.write_text(f"""#!{sys.executable}
# RECORDED STAND-IN for trtexec, used only because TensorRT cannot run on this test host.
import sys
import os
args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
flags = set(sys.argv[1:])
builds = args.get("--onnx", "").endswith(".onnx") and {{"--int8", "--fp16"}} <= flags
loads = os.path.isfile(args.get("--loadEngine", ""))
if not (builds or loads):
    sys.stderr.write("[E] stand-in: unexpected argv %r\\n" % sys.argv[1:])
    sys.exit(1)
if "--saveEngine" in args:
    open(args["--saveEngine"], "wb").write(b"engine built from " + open(args["--onnx"], "rb").read()[:16])
sys.stdout.write(open({str(RECORDED_LOG)!r}).read())
""")
    path.chmod(0o755)
    return path


def test_tensorrt_engine_built_on_the_board_over_ssh(digits_models, sshd, tmp_path, edgekit_cli):  # noqa: F811
    entry = ssh_entry(sshd, tmp_path / "board") | {"trtexec": str(_standin(tmp_path / "trtexec"))}
    inventory = tmp_path / "devices.yaml"
    inventory.write_text(yaml.safe_dump({"version": 1, "devices": {"jetson": entry}}))
    out = tmp_path / "build"
    result = edgekit_cli("compress", digits_models[1], "--int8", "-c", DIGITS_DATA, "--color", "grayscale",
                         "-t", "tensorrt", "--device", "jetson", "--inventory", inventory,
                         "--num-calibration", "60", "--runs", "2", "--out", out, "--quiet")
    assert result.code == 0, result.err
    report = json.loads((out / "report.json").read_text())
    trt = next(a for a in report["artifacts"] if a["target"] == "tensorrt")["details"]
    engine = trt["engine"]
    assert engine["built"] is True, engine
    assert (out / engine["engine"]).read_bytes().startswith(b"engine built from ")
    assert RECORDED_LOG.read_text() in (out / engine["log"]).read_text()  # + the board shell's stderr
    assert engine["trtexec"]["tensorrt_version"] == "8.0.1" and engine["trtexec"]["latency"]["median"] > 0
    assert engine["command"].startswith(entry["trtexec"])
    assert not [n for n in report["notes"] if "engine not built" in n]
    # the same compress also benched the artifacts on the board (harness for the ONNX files)
    bench = json.loads((out / "bench" / "bench.json").read_text())
    rows = {r["artifact"]: r for r in bench["rows"]}
    assert rows["model_trt_int8.plan"]["tool"] == "trtexec" and rows["model_trt_int8.plan"]["status"] == "ok"
    assert rows["model_fp32.onnx"]["tool"] == "harness" and rows["model_fp32.onnx"]["status"] == "ok"
