"""Graph repairs the producers share, each small and proven by the verify step that follows it: the default-domain
opset, Constant nodes turned into initializers (quantizers and onnx2torch look for weights only there), nodes put
in topological order (onnx.checker requires it, onnxruntime does not), and an opset upgrade."""

from __future__ import annotations

import heapq
from typing import Any, Iterator, Sequence

# The op types whose second input is a weight a quantizer or onnx2torch reads as an initializer.
WEIGHT_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def default_opset(model: Any) -> int:
    """The default-domain opset `model` imports (1 when it imports none, as onnx reads it)."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def _constant_value(node: Any) -> Any:
    """The TensorProto a Constant node holds in `value`, or None (value_float, sparse_value...)."""
    return next((a.t for a in node.attribute if a.name == "value" and a.HasField("t")), None)


def constant_weights(model: Any, ops: Sequence[str] = WEIGHT_OPS) -> list[str]:
    """Names of the weights of `ops` nodes (Conv, MatMul, Gemm) that a Constant node makes instead of an initializer."""
    constants = {
        n.output[0]
        for n in model.graph.node
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and _constant_value(n) is not None
    }
    return sorted(
        {n.input[1] for n in model.graph.node if n.op_type in ops and len(n.input) > 1 and n.input[1] in constants}
    )


def constants_to_initializers(model: Any) -> int:
    """Turn every top-level Constant node that holds a tensor into an initializer of the same name; the count."""
    graph = model.graph
    kept, moved = [], []
    for node in graph.node:
        value = _constant_value(node) if node.op_type == "Constant" and node.domain in ("", "ai.onnx") else None
        if value is None:
            kept.append(node)
            continue
        tensor = type(value)()
        tensor.CopyFrom(value)
        tensor.name = node.output[0]
        moved.append(tensor)
    if moved:
        del graph.node[:]
        graph.node.extend(kept)
        graph.initializer.extend(moved)
    return len(moved)


def _subgraph_names(node: Any) -> Iterator[str]:
    """Every name a node's subgraphs (If, Loop, Scan bodies) read, their own included: a superset of the outer
    names they capture, which is all a sort needs."""
    for a in node.attribute:
        for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            for n in g.node:
                yield from n.input
                yield from _subgraph_names(n)


def toposort(model: Any) -> bool:
    """Sort the top-level nodes so that each comes after the nodes whose outputs it reads (subgraph captures
    included), keeping the original order where it already holds. True when the order changed. A cycle is left
    as it is, for onnx.checker to name."""
    graph = model.graph
    nodes = list(graph.node)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    needs = [
        {producer[x] for x in [*n.input, *_subgraph_names(n)] if x in producer and producer[x] != i}
        for i, n in enumerate(nodes)
    ]
    users: list[list[int]] = [[] for _ in nodes]
    for i, deps in enumerate(needs):
        for d in deps:
            users[d].append(i)
    waiting = [len(d) for d in needs]
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:  # Kahn's algorithm, the lowest original index first: an ordered graph stays as it is
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) < len(nodes):
        return False  # a cycle
    if order == list(range(len(nodes))):
        return False
    del graph.node[:]
    graph.node.extend(nodes[i] for i in order)
    return True


def upgrade_opset(model: Any, version: int) -> Any:
    """`model` converted to default-domain opset `version` by onnx.version_converter."""
    from onnx import version_converter

    return version_converter.convert_version(model, version)
