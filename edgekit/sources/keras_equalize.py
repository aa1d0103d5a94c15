"""Cross-layer equalization of a Keras model's weights, in place (before the SavedModel export,
so the TFLite and the TF->ONNX paths both start from the equalized float model).

Producers and consumers: Conv2D (groups 1), DepthwiseConv2D, Dense. In between (and as the
producer's own activation) only positively homogeneous layers: ReLU without a cap or threshold,
LeakyReLU, linear, max/average pooling (global ones too), zero padding, dropout, identity, and
Flatten / Reshape / Permute where the channel stays the fastest-varying index of the last axis
(a CRNN's [H, W, C] -> [W, H * C] before its per-column dense layer).
"""

from __future__ import annotations

import numpy as np

from edgekit.transforms.equalize import Pair, equalize

PASS_THROUGH = {"MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
                "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
                "ZeroPadding1D", "ZeroPadding2D", "Dropout", "SpatialDropout2D", "Identity", "LeakyReLU"}
HOMOGENEOUS_ACTIVATIONS = {"linear", "relu", "leaky_relu"}


def _activation_ok(layer) -> bool:
    activation = getattr(layer, "activation", None)
    return activation is None or getattr(activation, "__name__", "") in HOMOGENEOUS_ACTIVATIONS


def _keeps_channels_last(layer, channels: int) -> bool:
    """A reshaping layer after which channel i is still every index j of the last axis with j % channels == i."""
    kind = type(layer).__name__
    if kind == "Permute" and list(layer.dims)[-1] != len(layer.dims):
        return False
    shape = getattr(getattr(layer, "output", None), "shape", None)
    return bool(shape) and shape[-1] is not None and shape[-1] % channels == 0


def _passes_through(layer, channels: int) -> bool:
    kind = type(layer).__name__
    if kind in ("Flatten", "Reshape", "Permute"):
        return _keeps_channels_last(layer, channels)
    if kind == "ReLU":
        return layer.max_value is None and float(layer.threshold) == 0.0
    if kind == "Activation":
        return _activation_ok(layer)
    return kind in PASS_THROUGH and not getattr(layer, "data_format", "channels_last") == "channels_first"


def _axes(layer) -> tuple[int, int] | None:
    """(output-channel axis, input-channel axis) of the layer's kernel; None when unsupported."""
    kind = type(layer).__name__
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return None
    if kind in ("Conv1D", "Conv2D") and getattr(layer, "groups", 1) == 1:
        rank = len(layer.kernel.shape)
        return rank - 1, rank - 2
    if kind == "DepthwiseConv2D" and layer.depth_multiplier == 1:
        return 2, 2
    if kind == "Dense" and len(layer.kernel.shape) == 2:
        return 1, 0
    return None


def _only_use(layer, layers: set) -> list:
    """The layers consuming `layer`'s output (None when the layer is shared or feeds a sub-model)."""
    if len(layer._inbound_nodes) != 1:
        return None
    users = [node.operation for node in layer._outbound_nodes]
    return users if users and all(id(u) in layers for u in users) else None


def find_pairs(model) -> list[tuple]:
    """(producer layer, [consumer layers], Pair) for every equalizable pair of the model."""
    layers = {id(layer) for layer in model.layers}
    outputs = {id(t._keras_history.operation) for t in model.outputs}
    found = []
    for layer in model.layers:
        axes = _axes(layer)
        if axes is None or not _activation_ok(layer) or id(layer) in outputs:
            continue
        current, ok = layer, True
        channels = layer.kernel.shape[axes[0]]
        users = _only_use(current, layers)
        while users and len(users) == 1 and _passes_through(users[0], channels):
            current = users[0]
            if id(current) in outputs:
                ok = False
                break
            users = _only_use(current, layers)
        if not ok or not users or any(_axes(u) is None or u.kernel.shape[_axes(u)[1]] % channels for u in users):
            continue
        bias = f"{layer.name}/bias" if getattr(layer, "use_bias", False) else None
        pair = Pair(f"{layer.name}/kernel", axes[0], bias,
                    tuple((f"{u.name}/kernel", _axes(u)[1]) for u in users),
                    label=f"{layer.name} -> {', '.join(u.name for u in users)}")
        found.append((layer, users, pair))
    return found


def equalize_keras(model, mode: str = "auto") -> list[dict]:
    """Equalize the model's pairs in place (mode auto | on | off, see transforms.equalize);
    returns one record per equalized pair."""
    if mode == "off":
        return []
    found = find_pairs(model)
    variables = {}
    for layer, users, _ in found:
        for owner in [layer, *users]:
            variables[f"{owner.name}/kernel"] = owner.kernel
            if getattr(owner, "use_bias", False):
                variables[f"{owner.name}/bias"] = owner.bias
    arrays = {name: np.asarray(v.numpy()) for name, v in variables.items()}
    new, records = equalize(arrays, [pair for _, _, pair in found], mode)
    for name, variable in variables.items():
        if new[name] is not arrays[name]:
            variable.assign(new[name])
    return records
