"""The TensorRT target: from the ONNX target's fused fp32 graph, an explicitly quantized (QDQ)
INT8 ONNX, its calibration cache and trtexec command lines; the engine is built on the device
(`BuildContext.device`, its inventory entry's `trtexec`) when one is given."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

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
        ctx.on_step("building the tensorrt QDQ model")
        facts = ctx.upstream.facts
        plan = build_tensorrt_plan(facts["fp32"], ctx.stage, calibration_factory=calibration,
                                   method=facts["calibration_method"])
        details = {k: plan[k] for k in ("quantization", "trtexec_command", "trtexec_command_implicit_int8")}
        # The artifact validated on the host is the QDQ ONNX the engine is built from.
        built = Built(plan["name"], self.name, "int8", Path(plan["path"]), details, origin=Path(facts["fp32"]))
        result.built.append(with_inventory(self, built))
        return result

    def finish(self, built: Sequence[Built], ctx: BuildContext) -> list[str]:
        """Calibration cache, per-layer precision record and engine (on ctx.device) of the final
        QDQ model, after the float fallback; returns report notes."""
        from edgekit.backends.tensorrt.plan import finish_plan

        notes = []
        for artifact in built:
            device = ctx.device
            ctx.on_step("building the tensorrt engine" + (f" on {device.name}" if device else " record"))
            artifact.details.update(finish_plan(artifact.path, artifact.origin, device=device,
                                                trtexec=getattr(ctx.device_entry, "trtexec", None)))
            engine = artifact.details["engine"]
            if not engine.get("built"):
                notes.append(f"tensorrt: engine not built: {engine.get('reason')}")
            for line in engine.get("precision_check", {}).get("differs", [])[:5]:
                notes.append(f"tensorrt: engine precision differs from the plan: {line}")
        return notes

    def runner(self, path: Path, threads: Optional[int] = None):
        return None  # engines run on the device (edgekit bench)

    def inspect(self, path: Path) -> tuple[dict, dict, dict]:
        from edgekit.backends.onnx.inspect import inspect_onnx

        return inspect_onnx(path) if Path(path).suffix == ".onnx" else ({}, {}, {})

    def embed_contract(self, path: Path, contract) -> None:
        return None

    def selective(self, source, calibration, recipe, ctx: BuildContext, built: Sequence[Built] = ()):
        """Layer-by-layer INT8 -> FP16 over the ONNX target's fused fp32 graph, with the plain
        INT8 build's settings (symmetric activations; a float node runs in FP16 on the engine)."""
        from edgekit.backends import get
        from edgekit.backends.onnx.quantize import rebuild_options
        from edgekit.backends.tensorrt.selective import TensorrtSelective

        int8 = next((b for b in built if b.precision == "int8"), None)
        if int8 is not None:
            return TensorrtSelective(int8.origin, calibration, source.layer_names,
                                     options=rebuild_options(int8.details["quantization"]))
        onnx = get(self.upstream).selective(source, calibration, recipe, ctx)  # prepares the fused graph
        onnx.close()  # the fused graph it prepared stays in ctx.workdir
        options = {**onnx.options, "per_channel": True, "symmetric_activations": True}
        return TensorrtSelective(onnx.fp32_path, calibration, source.layer_names, options=options)


TARGET = TensorrtTarget()
