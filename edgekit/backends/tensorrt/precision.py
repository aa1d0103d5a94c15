"""The per-layer precision a TensorRT plan asks for, and what its engine ran.

With explicit quantization TensorRT computes a conv/matmul in INT8 where Q/DQ pairs feed its
activation and weights; every other layer runs in FP16 when the build allows it (`--fp16`, the
default), else in FP32. TensorRT has no int16 activations, so its ladder is INT8 -> FP16.
`plan_precisions` reads that choice from the QDQ ONNX the engine is built from; `engine_check`
compares it with the precisions of a built engine's layers (trtexec `--exportLayerInfo`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def plan_precisions(qdq_path: str | Path, fp16: bool = True) -> dict:
    """{"layers": [{node, op, precision, macs}], "mac_share": {precision: share}, "counts"} of
    every conv/matmul of the QDQ model; precision int8, else fp16 (fp32 with fp16=False)."""
    from edgekit.backends.onnx.inspect import compute_nodes

    floating = "fp16" if fp16 else "fp32"
    layers = [{"node": name, "op": op, "precision": "int8" if cls == "int8" else floating, "macs": macs}
              for name, op, cls, macs in compute_nodes(qdq_path)]
    total = sum(layer["macs"] for layer in layers)
    share = Counter()
    for layer in layers:
        share[layer["precision"]] += layer["macs"] / total if total else 1 / len(layers)
    return {"layers": layers, "mac_share": {k: round(v, 4) for k, v in sorted(share.items())},
            "counts": dict(sorted(Counter(layer["precision"] for layer in layers).items()))}


def engine_check(plan: dict, engine_layers: dict[str, str]) -> dict:
    """Each planned layer's engine precision (`engine_layers`: ONNX node -> precision, see
    `trtexec_log.parse_layer_inputs`), and the layers whose precision differs from the plan."""
    matched, differs = 0, []
    for layer in plan["layers"]:
        ran = engine_layers.get(layer["node"])
        if ran is None:
            continue
        matched += 1
        layer["engine"] = ran
        if ran != layer["precision"]:
            differs.append(f"{layer['node']}: planned {layer['precision']}, engine {ran}")
    return {"matched_layers": matched, "planned_layers": len(plan["layers"]), "differs": differs}
