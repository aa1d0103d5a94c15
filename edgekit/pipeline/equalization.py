"""The report entry of cross-layer equalization: which pairs were rescaled, by what range."""

from __future__ import annotations

from edgekit.backends.base import Built


def record_equalization(built: list[Built], source, mode: str) -> list[str]:
    """Attach {"mode", "where", "pairs"} to every INT8 artifact's details (TFLite: the Keras model's
    pairs; ONNX and TensorRT: the fused FP32 graph's, taken from the ONNX FP32 artifact's steps);
    returns one report note per target that equalized a pair."""
    if mode == "off":
        return []
    notes = []
    onnx_fp32 = next((b for b in built if b.target == "onnx" and b.precision == "fp32"), None)
    onnx_pairs = (onnx_fp32.details.get("steps", {}).get("equalization") or []) if onnx_fp32 else []
    keras_pairs = list(getattr(source, "equalization", []) or [])
    for b in built:
        if b.precision != "int8":
            continue
        if b.target == "tflite":
            where = "keras model" if source.format == "keras" else "not applied: needs a .keras model"
            b.details["equalization"] = {"mode": mode, "where": where, "pairs": keras_pairs}
        else:
            where = "keras model, then the fused onnx graph" if keras_pairs else "fused onnx graph"
            b.details["equalization"] = {"mode": mode, "where": where, "pairs": keras_pairs + onnx_pairs}
        pairs = b.details["equalization"]["pairs"]
        if pairs:
            notes.append(f"{b.name}: cross-layer equalization rescaled {len(pairs)} pair(s) in the {where}: "
                         + "; ".join(f"{p['pair']} (channel scales {p['scale_min']:.3g}..{p['scale_max']:.3g})"
                                     for p in pairs))
    return notes
