"""Which tensor of the artifact stands for which tensor of the reference, and which only share a name.

A name can change its meaning across a transform: after BatchNormalization is fused, the Conv output
holds the normalized value; in a QDQ graph the Conv output named `Relu_output_0` is taken before the
quantization clip that replaced the Relu. So a pair is comparable only when
- both names exist and the ops that produce them agree (QuantizeLinear, DequantizeLinear, Cast and
  Identity are seen through: the DequantizeLinear output stands for the float tensor it quantized),
- or the reference's Relu was folded into a QuantizeLinear whose range starts at zero (that clip is the Relu),
- and no op that consumes the reference tensor is missing among the artifact's consumers (an op fused
  away into the producer would make the artifact's tensor hold its result).
Everything else that shares a name is listed as not comparable, with the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

TRANSPARENT = frozenset({"QuantizeLinear", "DequantizeLinear", "Cast", "Identity"})
MAX_TRANSPARENT = 8  # transparent ops seen through in a row (a QDQ pair and a Cast take three): keeps a walk local
_QMIN = {2: 0, 3: -128, 4: 0, 5: -32768}  # TensorProto.UINT8, INT8, UINT16, INT16: the lowest value


@dataclass(frozen=True)
class Pair:
    """An artifact tensor and the reference tensor it stands for."""

    tensor: str  # in the artifact
    reference: str  # in the reference
    node: str  # the node (of the artifact) whose op produced the value
    op: str
    inputs: tuple[str, ...]  # that node's inputs: the error it introduces is measured over theirs
    note: str = ""


@dataclass(frozen=True)
class Skipped:
    tensor: str
    reason: str


class TimeCapReached(Exception):
    """Matching ran past the localisation's time cap."""


def _check(deadline: float | None, i: int) -> None:
    if deadline is not None and i % 256 == 0 and time.monotonic() > deadline:
        raise TimeCapReached


class Graph:
    """A graph's producers, consumers and constants, for walking it without running it."""

    def __init__(self, model: Any):
        g = model.graph
        self.nodes = list(g.node)
        self.constants = {i.name for i in g.initializer} | {
            o for n in g.node if n.op_type == "Constant" for o in n.output
        }
        self.inputs = {i.name for i in g.input} - self.constants
        self.outputs = [o.name for o in g.output]
        self.inits = {i.name: i for i in g.initializer}
        self.producer: dict[str, Any] = {}
        self._variable: set[str] | None = None
        self.consumers: dict[str, list[Any]] = {}
        for n in self.nodes:
            for o in n.output:
                if o:
                    self.producer[o] = n
            for i in n.input:
                if i:
                    self.consumers.setdefault(i, []).append(n)

    def is_constant(self, t: str) -> bool:
        """A tensor computed from constants only (a weight's DequantizeLinear, a Cast of a weight)."""
        return t not in self.variable

    @property
    def variable(self) -> set[str]:
        """Tensors that depend on a graph input: everything reached from the inputs through consumers, once."""
        if self._variable is None:
            found = set(self.inputs)
            stack = list(self.inputs)
            seen: set[int] = set()
            while stack:
                for n in self.consumers.get(stack.pop(), []):
                    if id(n) not in seen:
                        seen.add(id(n))
                        new = [o for o in n.output if o and o not in self.constants and o not in found]
                        found.update(new)
                        stack += new
            self._variable = found
        return self._variable

    def source(self, t: str) -> tuple[str, list[Any]]:
        """Up through transparent ops: (the tensor they start from, the transparent nodes passed)."""
        chain: list[Any] = []
        while (
            len(chain) < MAX_TRANSPARENT
            and (n := self.producer.get(t)) is not None
            and n.op_type in TRANSPARENT
            and n.input
            and n.input[0]
        ):
            chain.append(n)
            t = n.input[0]
        return t, chain

    def effective_consumers(self, t: str) -> list[Any]:
        """Down through transparent ops: the nodes that really use `t`'s value."""
        out: list[Any] = []
        stack, seen = [(t, 0)], set()
        while stack:
            cur, depth = stack.pop()
            for n in self.consumers.get(cur, []):
                if id(n) in seen:
                    continue
                seen.add(id(n))
                if n.op_type in TRANSPARENT and n.input[0] == cur and depth < MAX_TRANSPARENT:
                    stack += [(o, depth + 1) for o in n.output]
                else:
                    out.append(n)
        return out

    def zero_clip(self, chain: list[Any]) -> bool:
        """Whether a QuantizeLinear in `chain` clips at zero: its zero point is its type's lowest value."""
        from onnx import numpy_helper

        for n in chain:
            if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in self.inits:
                zp = self.inits[n.input[2]]
                lowest = _QMIN.get(zp.data_type)
                if (
                    lowest is not None
                    and numpy_helper.to_array(zp).size == 1
                    and int(numpy_helper.to_array(zp).ravel()[0]) == lowest
                ):
                    return True
        return False


def _label(n: Any) -> str:
    return n.name or f"{n.op_type}->{n.output[0]}"


def _feeding_ops(g: Graph, node: Any) -> set[str]:
    """The op computing `node`'s input, and the one before it where that is a BatchNormalization (which a
    Conv absorbs when it is fused)."""
    feed = g.producer.get(node.input[0]) if node.input else None
    ops = set()
    if feed is not None:
        ops.add(feed.op_type)
        if feed.op_type == "BatchNormalization" and (conv := g.producer.get(feed.input[0])) is not None:
            ops.add(conv.op_type)
    return ops


def match(artifact: Any, reference: Any, deadline: float | None = None) -> tuple[list[Pair], list[Skipped], int]:
    """Pairs in the artifact's topological order, what shares a name but is not comparable, and how many
    of the artifact's computed tensors have no counterpart in the reference at all. Each tensor is looked up
    by name, never against every other: linear in the nodes (raises TimeCapReached past `deadline`)."""
    a, r = Graph(artifact), Graph(reference)
    best: dict[str, tuple[int, str, Any, str]] = {}  # reference tensor -> (chain length, artifact tensor, node, note)
    skipped: dict[str, str] = {}
    absent = 0
    for k, n in enumerate(a.nodes):
        _check(deadline, k)
        for t in n.output:
            if not t or n.op_type == "QuantizeLinear" or t in a.constants or a.is_constant(t):
                continue
            base, chain = a.source(t)
            if base in a.inputs and not chain:
                continue
            producer = a.producer.get(base)
            if producer is None:  # a graph input seen through a Cast or QDQ pair: fed equal, nothing to localize
                continue
            ref = t if t in r.producer else base if base in r.producer else None
            if ref is None:
                absent += 1
                continue
            ref_base, _ = r.source(ref)
            ref_node = r.producer.get(ref_base)
            if ref_node is None:
                continue
            note = ""
            if producer.op_type != ref_node.op_type:
                folded = (
                    ref_node.op_type == "Relu" and producer.op_type in _feeding_ops(r, ref_node) and a.zero_clip(chain)
                )
                if not folded:
                    skipped[t] = f"produced by {producer.op_type} here, by {ref_node.op_type} in the reference"
                    continue
                note = "Relu folded into the quantization clip"
            have = {c.op_type for c in a.effective_consumers(t)}
            lost = [c for c in r.effective_consumers(ref) if c.op_type not in have and not (note and c is ref_node)]
            if lost:
                skipped[t] = (
                    f"in the reference it feeds {lost[0].op_type} '{_label(lost[0])}', which is not among its "
                    f"consumers here (fused or rewritten)"
                )
                continue
            prev = best.get(ref)
            if prev is None or len(chain) > prev[0]:
                best[ref] = (len(chain), t, producer, note)
    chosen = {v[1]: (ref, v[2], v[3]) for ref, v in best.items()}
    pairs: list[Pair] = []
    for n in a.nodes:
        for t in n.output:
            if t in chosen:
                ref, producer, note = chosen[t]
                inputs = tuple(i for i in producer.input if i)
                pairs.append(Pair(t, ref, _label(producer), producer.op_type, inputs, note))
                skipped.pop(t, None)
    return pairs, [Skipped(t, why) for t, why in skipped.items()], absent
