"""Running two ONNX models with chosen intermediate tensors exposed, a chunk of tensors at a time.

A session is opened with the failing check's own options (`model_checks.backends.onnx.runner.session_options`),
with onnxruntime's graph optimizations either off (every tensor keeps the meaning its name has in the file)
or as the check ran them (`optimized=True`: only tensors that survive the rewrites can be read; the rewritten
graph is saved in a private temporary directory to say which). A chunk holds as many tensors as fit in the
memory cap (sizes from shape inference on the feeds' concrete shapes); a tensor larger than the cap is never
exposed, or, where its size is only known once it has run, dropped unmeasured. The caller checks its time
cap between chunks.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

DEFAULT_TIME_CAP_S = 60.0  # `model-checks localize`: the full table
DEFAULT_MEMORY_CAP_MB = 256
GATE_FLOOR_S = 5.0  # under a failed check: the larger of this and GATE_FACTOR x the check's own time
GATE_FACTOR = 10.0
_SMALL = 4096  # initializers up to this many elements stay in the copy shape inference reads (shapes among them)
_ITEM_BYTES = {1: 4, 10: 2, 11: 8, 16: 2, 2: 1, 3: 1, 6: 4, 7: 8, 9: 1}  # TensorProto element type -> bytes


@dataclass(frozen=True)
class Caps:
    time_s: float = DEFAULT_TIME_CAP_S
    memory_mb: int = DEFAULT_MEMORY_CAP_MB
    basis: str = ""  # where time_s came from, for the message
    run_s: float = 0.0  # what running both models once took (the check's time): no chunk starts that cannot end in time

    @classmethod
    def for_check(cls, check_s: float) -> Caps:
        """The gate's caps under a failed check: a few seconds, or a multiple of the check's own time."""
        t = min(DEFAULT_TIME_CAP_S, max(GATE_FLOOR_S, GATE_FACTOR * check_s))
        ceiling = f", at most {DEFAULT_TIME_CAP_S:g} s" if t == DEFAULT_TIME_CAP_S else ""
        basis = f"the larger of {GATE_FLOOR_S:g} s and {GATE_FACTOR:g}x the check's own {check_s:.2f} s{ceiling}"
        return cls(t, DEFAULT_MEMORY_CAP_MB, basis, check_s)

    @property
    def side_bytes(self) -> int:
        """The bytes of exposed tensors one side may hold at once: half the memory cap."""
        return self.memory_mb * 1024 * 1024 // 2


def options(optimized: bool) -> Any:
    """The failing check's session options, with graph optimizations off unless `optimized`."""
    from model_checks.backends.onnx.runtime import onnxruntime

    ort = onnxruntime()

    from model_checks.backends.onnx.runner import session_options

    so = session_options()
    if not optimized:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return so


class Exposed:
    """One model whose intermediate tensors can be read, `run(names)` at a time."""

    def __init__(self, model: Any, feeds: Mapping[str, np.ndarray], optimized: bool = False):
        import onnx

        self.model = model
        self.feeds = dict(feeds)
        self.optimized = optimized
        self.final: dict[str, np.ndarray] | None = None
        # a copy for shape inference with the feeds' shapes on the inputs, so it resolves computed shapes too; built
        # field by field, the weights left out (inputs of their shape to it): never a second copy of megabytes
        concrete = onnx.ModelProto(
            ir_version=model.ir_version, opset_import=model.opset_import, functions=model.functions
        )
        src, g = model.graph, concrete.graph
        g.node.extend(src.node)
        g.input.extend(src.input)
        g.output.extend(src.output)
        g.value_info.extend(src.value_info)
        g.initializer.extend(t for t in src.initializer if _elements(t) <= _SMALL)
        declared = {i.name for i in src.input}
        g.input.extend(
            onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
            for t in src.initializer
            if _elements(t) > _SMALL and t.name not in declared
        )
        for i in concrete.graph.input:
            if i.name in feeds and i.type.HasField("tensor_type"):
                shape = i.type.tensor_type.shape
                shape.ClearField("dim")
                for n in np.shape(feeds[i.name]):
                    shape.dim.add().dim_value = int(n)
        try:
            inferred = onnx.shape_inference.infer_shapes(concrete, data_prop=True)
        except Exception:  # a model shape inference cannot handle still runs; its sizes are found when it has run
            inferred = concrete
        g = inferred.graph
        self.info = {v.name: v for v in [*g.value_info, *g.output, *g.input]}
        del concrete, inferred

    def nbytes(self, name: str) -> int | None:
        """The tensor's size from its inferred shape; None where inference left it open."""
        v = self.info.get(name)
        if v is None or not v.type.HasField("tensor_type") or not v.type.tensor_type.HasField("shape"):
            return None
        n = 1
        for d in v.type.tensor_type.shape.dim:
            if not d.HasField("dim_value") or d.dim_value < 0:
                return None
            n *= d.dim_value
        return n * _ITEM_BYTES.get(v.type.tensor_type.elem_type, 8)

    def session(self, names: Sequence[str] = (), save: Path | None = None) -> Any:
        import onnx

        from model_checks.backends.onnx.runtime import onnxruntime

        ort = onnxruntime()

        g = self.model.graph
        before = len(g.output)
        have = {o.name for o in g.output}
        for name in names:  # appended to the model itself and removed again: no copy of its weights per chunk
            if name not in have:
                v = self.info.get(name)
                typed = v is not None and v.type.HasField("tensor_type")
                g.output.append(v if typed else onnx.helper.make_empty_tensor_value_info(name))
        try:
            data = self.model.SerializeToString()
        finally:
            del g.output[before:]
        so = options(self.optimized)
        so.log_severity_level = 3
        if save is not None:
            so.optimized_model_filepath = str(save)
        return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])

    def run(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The tensors `names`; the first run also fetches the graph's own outputs (`final`): one pass serves both."""
        fetch = list(names)
        if self.final is None:
            fetch += [o.name for o in self.model.graph.output if o.name not in names]
        # copies: an array onnxruntime returns can keep its session's whole arena alive (the largest intermediate
        # included) for as long as the array lives, which would hold two sessions' arenas at once
        got = {n: np.array(v, copy=True) for n, v in zip(fetch, self.session(fetch).run(fetch, self.feeds))}
        if self.final is None:
            self.final = {o.name: got[o.name] for o in self.model.graph.output}
        return {n: got[n] for n in names}

    def outputs(self) -> dict[str, np.ndarray]:
        """The graph's own outputs, as a check sees them (from the first run, when there was one)."""
        if self.final is None:
            names = [o.name for o in self.model.graph.output]
            self.final = {n: np.array(v, copy=True) for n, v in zip(names, self.session().run(names, self.feeds))}
        return self.final

    def rewritten(self) -> Any:
        """The graph onnxruntime runs with these options, saved in a private temporary directory and read back
        (without its weights): which tensors survive the rewrites, and which nodes fused others."""
        import onnx

        with tempfile.TemporaryDirectory(prefix="model-checks-localize-") as d:
            path = Path(d) / "optimized.onnx"
            self.session(save=path)
            return onnx.load(str(path), load_external_data=False)


def _elements(t: Any) -> int:
    n = 1
    for d in t.dims:
        n *= d
    return n


@dataclass(frozen=True)
class Over:
    """A pair not measured because a tensor is larger than the memory cap."""

    nbytes: int
    cap: int
    known_before: bool  # False: its size was only known once it had run (shape inference left it open)

    def __str__(self) -> str:
        when = "" if self.known_before else " (its size was only known once it had run)"
        return f"{self.nbytes / 2**20:.1f} MiB, over the memory cap of {self.cap / 2**20:.1f} MiB a side: skipped{when}"


def chunks(
    pairs: Sequence[tuple[str, str]], sizes: Callable[[tuple[str, str]], int], budget: int
) -> Iterator[list[tuple[str, str]]]:
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


def measure_chunks(
    artifact: Exposed,
    reference: Exposed,
    pairs: Sequence[tuple[str, str]],
    caps: Caps,
    measure: Callable[[tuple[str, str], np.ndarray, np.ndarray], Any],
) -> Iterator[dict[tuple[str, str], Any]]:
    """`measure(pair, artifact value, reference value)` for each (artifact tensor, reference tensor), one chunk
    a step, in order; a pair over the cap yields an `Over` instead. The caller stops when its caps say so."""
    budget = caps.side_bytes
    unknown = max(budget // 8, 1)  # at most eight tensors of unknown size alive at once
    known: dict[tuple[str, str], int | None] = {}
    for p in pairs:
        sizes = [artifact.nbytes(p[0]), reference.nbytes(p[1])]
        known[p] = None if None in sizes else max(s for s in sizes if s is not None)
    pending: list[tuple[str, str]] = []
    over: dict[tuple[str, str], Any] = {}
    for p in pairs:  # over the cap before running: never exposed, reported in order with its neighbours
        size = known[p]
        if size is not None and size > budget:
            over[p] = Over(size, budget, True)
        else:
            pending.append(p)
    order = {p: i for i, p in enumerate(pairs)}
    it = iter(sorted(over, key=order.__getitem__))
    nxt = next(it, None)
    for chunk in chunks(pending, lambda p: known[p] if known[p] is not None else unknown, budget):
        done: dict[tuple[str, str], Any] = {}
        while nxt is not None and order[nxt] < order[chunk[0]]:
            done[nxt] = over[nxt]
            nxt = next(it, None)
        got = artifact.run(list(dict.fromkeys(a for a, _ in chunk)))
        want = reference.run(list(dict.fromkeys(r for _, r in chunk)))
        for p in chunk:
            size = max(got[p[0]].nbytes, want[p[1]].nbytes)
            done[p] = Over(size, budget, False) if size > budget else measure(p, got[p[0]], want[p[1]])
        del got, want
        yield done
    rest = {}
    while nxt is not None:
        rest[nxt] = over[nxt]
        nxt = next(it, None)
    if rest:
        yield rest
