"""Per-layer INT8 error of an ONNX QDQ model via onnxruntime's `quantization.qdq_loss_debug`.

Both the float and the QDQ model are augmented to output every intermediate activation
(`modify_model_output_intermediate_tensors`), run on the held-out samples
(`collect_activations`) and matched by tensor name (`create_activation_matching`). For each
quantized activation the error is the QDQ model's value (`post_qdq`) against the float model's
(`float`): the error accumulated up to that tensor (onnxruntime folds Relu/Clip into the
QuantizeLinear that follows, so `pre_qdq` of an activation output is the pre-activation value
and cannot be compared alone). Scale and zero point come from the tensor's QuantizeLinear. qdq_loss_debug flattens tensors, so ONNX rows have no
channel range ratio.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from edgekit.validate.layer_error import ErrorAccumulator, LayerError
from edgekit.backends.onnx.selective import OnnxSelective


def _qdq_params(qdq_path: Path) -> dict[str, tuple[float, tuple[float, float]]]:
    """Activation tensor -> (scale, representable float range) from its QuantizeLinear node."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(qdq_path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    params = {}
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in inits or len(node.input) < 3:
            continue
        scale, zero = inits.get(node.input[1]), inits.get(node.input[2])
        if scale is None or zero is None or np.size(scale) != 1:
            continue
        info = np.iinfo(zero.dtype)
        s, z = float(scale.reshape(-1)[0]), int(zero.reshape(-1)[0])
        params[node.input[0]] = (s, ((info.min - z) * s, (info.max - z) * s))
    return params


def onnx_layer_errors(selective: OnnxSelective, feeds: Sequence[dict[str, np.ndarray]]) -> list[LayerError]:
    """Error per quantized activation on `feeds`, in graph order, labelled with source layers."""
    from onnxruntime.quantization import qdq_loss_debug as qdq

    from edgekit.backends.onnx.quantize import StreamingReader, model_inputs

    qdq_path = selective._files.write(selective.build())
    aug_float, aug_qdq = qdq_path.with_suffix(".float_aug.onnx"), qdq_path.with_suffix(".qdq_aug.onnx")
    with contextlib.redirect_stdout(io.StringIO()):
        qdq.modify_model_output_intermediate_tensors(str(selective.fp32_path), str(aug_float))
        qdq.modify_model_output_intermediate_tensors(str(qdq_path), str(aug_qdq))
        checker = StreamingReader(lambda: iter(feeds), model_inputs(selective.fp32_path), source="validation")
        samples = [checker.check(f, i) for i, f in enumerate(feeds)]  # collect_activations iterates it
        float_acts = qdq.collect_activations(str(aug_float), samples)
        qdq_acts = qdq.collect_activations(str(aug_qdq), samples)
        matched = qdq.create_activation_matching(qdq_acts, float_acts)
    params = _qdq_params(qdq_path)
    order = {n.id: n for n in selective.nodes()}
    errors = []
    for tensor, pairs in matched.items():
        if tensor not in params or "float" not in pairs or "post_qdq" not in pairs:
            continue
        acc = ErrorAccumulator(channels_last=False)
        for ref, post in zip(pairs["float"], pairs["post_qdq"]):
            acc.add(ref, post)
        producer = selective.producers.get(tensor, tensor)
        node = order.get(producer)
        scale, qrange = params[tensor]
        errors.append(acc.summary(producer, node.layer if node else producer, node.op_type if node else "?",
                                  node.index if node else 10**6 + len(errors), scale, qrange))
    return sorted(errors, key=lambda e: e.position)
