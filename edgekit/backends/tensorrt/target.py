"""The TensorRT target: from the ONNX target's fused fp32 graph, an explicitly quantized (QDQ)
INT8 ONNX, its calibration cache and trtexec command lines; the engine is built on the device
(`BuildContext.device`, its inventory entry's `trtexec`) when one is given."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from edgekit.backends.base import Built, BuildContext, BuildResult, with_inventory


class TensorrtTarget:
    name = "tensorrt"
    formats = (".plan", ".engine")
    precisions = ("int8",)
    needs = "onnx"
    upstream = "onnx"
    baseline = "onnx"
    uses_device = True
    runs_on_host = False

    def build(self, source, recipe, calibration, ctx: BuildContext) -> BuildResult:
        from edgekit.backends.tensorrt.plan import build_tensorrt_plan

        result = BuildResult()
        if calibration is None:
            result.notes.append("tensorrt: INT8 plan skipped (needs calibration data)")
            return result
        device = ctx.device
        ctx.on_step("building tensorrt plan" + (f" on {device.name}" if device else ""))
        facts = ctx.upstream.facts
        plan = build_tensorrt_plan(facts["fp32"], ctx.stage, calibration_factory=calibration,
                                   method=facts["calibration_method"], device=device,
                                   trtexec=getattr(ctx.device_entry, "trtexec", None))
        details = {k: plan[k] for k in ("quantization", "calibration_cache", "trtexec_command",
                                         "trtexec_command_implicit_int8", "engine")}
        details["calibration_cache"]["path"] = Path(details["calibration_cache"]["path"]).name
        # The artifact validated on the host is the QDQ ONNX the engine is built from.
        result.built.append(with_inventory(self, Built(plan["name"], self.name, "int8", Path(plan["path"]), details)))
        if not plan["engine"].get("built"):
            result.notes.append(f"tensorrt: engine not built: {plan['engine'].get('reason')}")
        return result

    def runner(self, path: Path, threads: Optional[int] = None):
        return None  # engines run on the device (edgekit bench)

    def inspect(self, path: Path) -> tuple[dict, dict, dict]:
        from edgekit.backends.onnx.inspect import inspect_onnx

        return inspect_onnx(path) if Path(path).suffix == ".onnx" else ({}, {}, {})

    def embed_contract(self, path: Path, contract) -> None:
        return None

    def selective(self, source, calibration, recipe, ctx: BuildContext, built=()):
        return None


TARGET = TensorrtTarget()
