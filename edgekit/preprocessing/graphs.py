"""GraphViews of a fixed SavedModel's frozen signature and of an ONNX graph, for `walk_chain`."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Optional

import numpy as np

from edgekit.preprocessing.chain import Chain, Node, walk_chain


class TensorFlowView:
    """The serving signature, variables frozen and functions inlined; constants run in a session."""

    def __init__(self, saved_dir: Path):
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        from edgekit.sources.tensorflow import SIGNATURE, import_tensorflow, load_fixed

        self.tf = import_tensorflow()
        frozen = convert_variables_to_constants_v2(load_fixed(saved_dir).signatures[SIGNATURE])
        self.graph_def = frozen.graph.as_graph_def()
        self.input_tensors = {t.name.split(":")[0]: t.name for t in frozen.inputs}
        self._nodes = {n.name: n for n in self.graph_def.node}
        self._consumers: dict[str, list[Node]] = defaultdict(list)
        for n in self.graph_def.node:
            data = tuple(_tensor(i) for i in n.input if not i.startswith("^"))
            for i in data:
                self._consumers[i].append(Node(n.op, n.name, data, f"{n.name}:0"))
        self._session = None  # opened on the first constant, for the walk's few constants

    def consumers(self, tensor: str) -> list[Node]:
        return self._consumers.get(tensor, [])

    def _depends_on_placeholder(self, name: str) -> bool:
        """Whether node `name` reads a Placeholder, through any chain of its inputs."""
        stack, seen = [name], set()
        while stack:
            node = self._nodes.get(stack.pop())
            if node is None or node.op == "Placeholder":
                return True
            if node.name not in seen:
                seen.add(node.name)
                stack += [i.lstrip("^").split(":")[0] for i in node.input]
        return False

    def constant(self, tensor: str) -> Optional[np.ndarray]:
        if self._depends_on_placeholder(tensor.split(":")[0]):
            return None
        tf = self.tf
        if self._session is None:
            graph = tf.Graph()
            with graph.as_default():
                tf.import_graph_def(self.graph_def, name="")
            self._session = tf.compat.v1.Session(graph=graph)
        try:
            return np.asarray(self._session.run(tensor))
        except Exception:  # an op that cannot run alone: not a constant we can use
            return None


def _tensor(name: str) -> str:
    return name if ":" in name else f"{name}:0"


class OnnxView:
    """Consumers from the node list; constants from initializers and Constant nodes."""

    def __init__(self, model):
        from onnx import numpy_helper

        self._init = {i.name: i for i in model.graph.initializer}
        self._consts = {}
        self._consumers: dict[str, list[Node]] = defaultdict(list)
        for n in model.graph.node:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                self._consts[n.output[0]] = n.attribute[0].t
            for i in n.input:
                if i:
                    self._consumers[i].append(Node(n.op_type, n.name or n.output[0], tuple(n.input), n.output[0]))
        self._numpy = numpy_helper.to_array

    def consumers(self, tensor: str) -> list[Node]:
        return self._consumers.get(tensor, [])

    def constant(self, tensor: str) -> Optional[np.ndarray]:
        proto = self._init.get(tensor) or self._consts.get(tensor)
        if proto is None or proto.data_location == 1:  # external data: not read for this
            return None
        return self._numpy(proto)


def tensorflow_chain(saved_dir: Path, input_name: str, channels: int) -> Chain:
    view = TensorFlowView(saved_dir)
    tensor = view.input_tensors.get(input_name)
    return Chain() if tensor is None else walk_chain(view, tensor, channels)


def onnx_chain(model, input_name: str, channels: int) -> Chain:
    return walk_chain(OnnxView(model), input_name, channels)
