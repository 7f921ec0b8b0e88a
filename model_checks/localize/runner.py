"""Running two ONNX models with chosen intermediate tensors exposed, a chunk of tensors at a time.

Graph optimizations are off on both sides, so a tensor name keeps the meaning it has in the file. A
chunk holds as many tensors as fit in the memory cap (estimated from inferred shapes, the batch taken
from the feeds); its values are compared at once and dropped before the next chunk runs, so a large
model never has every intermediate alive. The time cap is checked between chunks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

DEFAULT_TIME_CAP_S = 60.0
DEFAULT_MEMORY_CAP_MB = 256
_ITEM_BYTES = {1: 4, 10: 2, 11: 8, 16: 2, 2: 1, 3: 1, 6: 4, 7: 8, 9: 1}  # TensorProto element type -> bytes


@dataclass(frozen=True)
class Caps:
    time_s: float = DEFAULT_TIME_CAP_S
    memory_mb: int = DEFAULT_MEMORY_CAP_MB


class Exposed:
    """One model whose intermediate tensors can be read, `run(names)` at a time."""

    def __init__(self, model: Any, feeds: Mapping[str, np.ndarray]):
        import onnx

        self.model = model
        self.feeds = dict(feeds)
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
        except Exception:  # a model shape inference cannot handle still runs; its sizes are then guessed
            inferred = model
        g = inferred.graph
        self.info = {v.name: v for v in [*g.value_info, *g.output, *g.input]}
        self.dims = {d.dim_param: feeds[i.name].shape[k] for i in g.input if i.name in feeds
                     for k, d in enumerate(i.type.tensor_type.shape.dim) if d.dim_param}

    def nbytes(self, name: str, unknown: int) -> int:
        """The tensor's size from its inferred shape; `unknown` where shape inference left it open."""
        v = self.info.get(name)
        if v is None or not v.type.tensor_type.HasField("shape"):
            return unknown
        n = 1
        for d in v.type.tensor_type.shape.dim:
            size = d.dim_value if d.HasField("dim_value") else self.dims.get(d.dim_param)
            if not size:
                return unknown
            n *= size
        return n * _ITEM_BYTES.get(v.type.tensor_type.elem_type, 8)

    def run(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        import onnx
        import onnxruntime as ort

        m = onnx.ModelProto()
        m.CopyFrom(self.model)
        have = {o.name for o in m.graph.output}
        for name in names:
            if name not in have:
                v = self.info.get(name)
                m.graph.output.append(v if v is not None and v.type.HasField("tensor_type") else onnx.helper.make_empty_tensor_value_info(name))
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return dict(zip(names, session.run(list(names), self.feeds)))


def chunks(pairs: Sequence[tuple[str, str]], sizes: Callable[[tuple[str, str]], int], budget: int) -> Iterator[list[tuple[str, str]]]:
    """Consecutive runs of pairs whose summed size stays within `budget` (a pair larger than it goes alone)."""
    cur: list[tuple[str, str]] = []
    used = 0
    for p in pairs:
        size = sizes(p)
        if cur and used + size > budget:
            yield cur
            cur, used = [], 0
        cur.append(p)
        used += size
    if cur:
        yield cur


def compare_pairs(artifact: Exposed, reference: Exposed, pairs: Sequence[tuple[str, str]], caps: Caps,
                  measure: Callable[[np.ndarray, np.ndarray], Any]) -> tuple[dict[tuple[str, str], Any], int]:
    """`measure(artifact value, reference value)` for each (artifact tensor, reference tensor), chunk by chunk;
    returns what was measured and how many pairs the time cap left unmeasured."""
    budget = caps.memory_mb * 1024 * 1024 // 2  # half for each side
    unknown = budget // 8

    def size(p: tuple[str, str]) -> int:
        return max(artifact.nbytes(p[0], unknown), reference.nbytes(p[1], unknown))

    deadline = time.monotonic() + caps.time_s
    done: dict[tuple[str, str], Any] = {}
    for chunk in chunks(pairs, size, budget):
        if time.monotonic() > deadline:
            break
        got = artifact.run([a for a, _ in chunk])
        want = reference.run(sorted({r for _, r in chunk}))
        for a, r in chunk:
            done[(a, r)] = measure(got[a], want[r])
        del got, want
    return done, len(pairs) - len(done)
