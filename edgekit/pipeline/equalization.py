"""The report entries of the float graph's rescalings before INT8: cross-layer equalization (which
pairs, by what range) and activation smoothing (which tensors, by what strength and gain)."""

from __future__ import annotations

from edgekit.backends.base import Built


def record_equalization(built: list[Built], source, mode: str) -> list[str]:
    """Attach {"mode", "where", "pairs"} to every INT8 artifact's details: the Keras model's pairs,
    plus those of the fused FP32 graph its target (or its upstream) equalized (its fp32 steps);
    returns one report note per target that equalized a pair."""
    if mode == "off":
        return []
    notes = []
    graph_pairs = _fp32_steps(built, "equalization")
    keras_pairs = list(getattr(source, "equalization", []) or [])
    for b in built:
        if b.precision != "int8":
            continue
        graph = graph_pairs.get(_graph_target(b)) or []
        if graph:
            where = "keras model, then the fused graph" if keras_pairs else "fused graph"
        else:
            where = "keras model" if source.format == "keras" else "not applied: needs a .keras model"
        b.details["equalization"] = {"mode": mode, "where": where, "pairs": keras_pairs + graph}
        pairs = b.details["equalization"]["pairs"]
        if pairs:
            notes.append(f"{b.name}: cross-layer equalization rescaled {len(pairs)} pair(s) in the {where}: "
                         + "; ".join(f"{p['pair']} (channel scales {p['scale_min']:.3g}..{p['scale_max']:.3g})"
                                     for p in pairs))
    return notes


def record_smoothing(built: list[Built], mode: str) -> list[str]:
    """Attach {"mode", "tensors"} to every INT8 artifact built from a fused FP32 graph that was
    smoothed (its target's, or its upstream's, fp32 steps["smoothing"]); returns one report note per
    such artifact."""
    if mode == "off":
        return []
    smoothed = _fp32_steps(built, "smoothing")
    notes = []
    for b in built:
        tensors = smoothed.get(_graph_target(b))
        if b.precision != "int8" or tensors is None:
            continue
        b.details["smoothing"] = {"mode": mode, "tensors": tensors}
        if tensors:
            notes.append(f"{b.name}: activation smoothing moved the outlier channels of {len(tensors)} tensor(s) "
                         "into their readers' weights: " + "; ".join(
                             f"{t['tensor']} (alpha {t['alpha']}, INT8 error {t['gain']:.3g}x less)" for t in tensors))
    return notes


def _fp32_steps(built: list[Built], step: str) -> dict:
    """Target -> what its fused FP32 graph's `step` recorded (its fp32 artifact's steps)."""
    return {b.target: b.details.get("steps", {}).get(step) for b in built if b.precision == "fp32"}


def _graph_target(b: Built) -> str:
    """The target whose fused FP32 graph `b` was built from: its upstream, else itself."""
    from edgekit import backends

    target = backends.get(b.target)
    return target.upstream or target.name
