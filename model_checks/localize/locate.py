"""Localisation of an ONNX artifact against an ONNX reference: match tensors, measure them chunk by chunk,
and say which node introduced the error. Module-level functions with picklable results, so they run in
the ONNX worker process when models are isolated.

It examines a configuration that shows the failure. The final outputs are compared with onnxruntime's graph
optimizations off (the failing check's other session options kept); where the error is over the tolerance
there too, the table is measured that way, every node kept as the file names it. Where the error appears only
with the optimizations on (a fused kernel computes differently, such as int8 kernels that saturate), the
table is measured as the check ran, on the tensors that survive the rewrites, and the fused nodes are named.
The time cap runs from the first byte read, matching included.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from model_checks.localize.match import TRANSPARENT, Graph, TimeCapReached, match
from model_checks.localize.report import Localization, Row, Sqnr
from model_checks.localize.runner import Caps, Exposed, Over, measure_chunks

CHUNK_COST = 1.5  # margin on the slowest chunk so far when judging whether the next one fits the time cap
_BLOCK = 1 << 20  # elements converted to float64 at a time: measuring never doubles a tensor's memory


def _rel_l2(got: np.ndarray, want: np.ndarray) -> tuple[float, str]:
    """rel_l2 of two same-shaped arrays in float64 blocks, or where a side is not finite, which one."""
    g, w = got.reshape(-1), want.reshape(-1)
    diff = norm = 0.0
    for i in range(0, g.size, _BLOCK):
        gb, wb = np.asarray(g[i : i + _BLOCK], np.float64), np.asarray(w[i : i + _BLOCK], np.float64)
        if not np.isfinite(gb).all():
            return 0.0, "here"
        if not np.isfinite(wb).all():
            return 0.0, "in the reference"
        diff += float(np.square(gb - wb).sum())  # not np.dot: BLAS threads crawl on a loaded machine
        norm += float(np.square(wb).sum())
    return (diff**0.5 / norm**0.5 if norm > 0 else diff**0.5), ""


def _measure(got: np.ndarray, want: np.ndarray, sqnr: bool = False) -> tuple[float, float | None] | str:
    if got.shape != want.shape:
        return f"shape {list(got.shape)} here, {list(want.shape)} in the reference"
    err, bad = _rel_l2(got, want)
    if bad:
        return f"NaN or Inf {bad}"
    if not sqnr:  # onnxruntime.quantization is imported only for quantized models
        return err, None
    from model_checks.localize.sqnr import activation_db

    return err, activation_db(got, want)


class _Levels:
    """The worst measured rel_l2 a tensor is computed from, found once per tensor, in the artifact's graph:
    what a node's introduced error is measured over (linear in the graph, never a walk per pair)."""

    def __init__(self, g: Graph):
        self.g = g
        self.errors: dict[str, float] = {}
        self.memo: dict[str, float] = {}

    def of(self, t: str) -> float:
        stack, visiting = [t], set()
        while stack:
            x = stack[-1]
            if x in self.memo:
                stack.pop()
                continue
            n = self.g.producer.get(x)
            if x in self.errors or n is None or x in self.g.constants:
                self.memo[x] = self.errors.get(x, 0.0)
                stack.pop()
                continue
            ins = [i for i in n.input if i and i not in self.g.constants]
            missing = [i for i in ins if i not in self.memo and i not in visiting]
            if missing:
                visiting.add(x)
                stack += missing
                continue
            self.memo[x] = max((self.memo.get(i, 0.0) for i in ins), default=0.0)
            stack.pop()
        return self.memo[t]


def _final(art: Exposed, ref: Exposed, output: str | None) -> tuple[str, float | None]:
    """rel_l2 of one graph output (the failing one, else the first) of the two models as they are."""
    got, want = art.outputs(), ref.outputs()
    name = output if output in got else next(iter(got), "")
    other = name if name in want else next(iter(want), None)
    if not name or other is None:
        return name, None
    m = _measure(np.asarray(got[name]), np.asarray(want[other]))
    return name, m[0] if isinstance(m, tuple) else None


LAYOUT = frozenset({"Transpose", "ReorderInput", "ReorderOutput", "Reshape"})  # moves values, computes nothing


def _groups(g: Graph, new: Callable[[Any], bool]) -> list[tuple[list[Any], set[tuple[str, str]]]]:
    """The connected groups of nodes `new` selects, each with its outline: the names of the other nodes it reads
    from and writes to, and the graph inputs and outputs it touches. Names of nodes, not tensors: a rewrite
    renames tensors (int8 to uint8, NCHW to NHWC) but keeps the nodes it leaves alone."""
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    nodes = [n for n in g.nodes if new(n)]
    ids = {id(n): k for k, n in enumerate(nodes)}
    parent.update({k: k for k in range(len(nodes))})
    for k, n in enumerate(nodes):
        for i in n.input:
            p = g.producer.get(i)
            if p is not None and id(p) in ids:
                parent[root(k)] = root(ids[id(p)])
    members: dict[int, list[Any]] = {}
    for k, n in enumerate(nodes):
        members.setdefault(root(k), []).append(n)
    outputs = set(g.outputs)
    out = []
    for group in members.values():
        inside = {id(n) for n in group}
        edge: set[tuple[str, str]] = set()
        for n in group:
            for i in n.input:
                p = g.producer.get(i)
                if i in g.inputs:
                    edge.add(("input", i))
                elif p is not None and id(p) not in inside:
                    edge.add(("from", p.name))
            for o in n.output:
                if o in outputs:
                    edge.add(("output", o))
                edge.update(("to", c.name) for c in g.consumers.get(o, []) if id(c) not in inside)
        out.append((group, edge))
    return out


def _fused(original: Any, rewritten: Any) -> dict[str, tuple[Any, list[str]]]:
    """Kernels onnxruntime made in place of nodes of the file: {tensor of the file: (the new node, the names of the
    nodes it replaced)}, for each tensor a replaced node computed. A group of new nodes stands for the group of
    removed nodes with the same outline; layout nodes (the transposes around an NHWC kernel) are never named."""
    go, gr = Graph(original), Graph(rewritten)
    orig = {(n.name, n.op_type) for n in go.nodes}
    kept = {(n.name, n.op_type) for n in gr.nodes}
    removed = _groups(go, lambda n: (n.name, n.op_type) not in kept)
    index: dict[tuple[str, str], list[int]] = {}
    for k, (_, edge) in enumerate(removed):
        for e in edge:
            index.setdefault(e, []).append(k)
    out: dict[str, tuple[Any, list[str]]] = {}
    for group, edge in _groups(gr, lambda n: (n.name, n.op_type) not in orig):
        kernels = [n for n in group if n.op_type not in LAYOUT]
        overlap: dict[int, int] = {}
        for e in edge:
            for k in index.get(e, [])[:64]:  # a name shared by many groups says little: bounded
                overlap[k] = overlap.get(k, 0) + 1
        if not kernels or not overlap:
            continue
        was = removed[max(overlap, key=lambda k: overlap[k])][0]
        real = [n for n in was if n.op_type not in TRANSPARENT] or was
        for n in was:
            for o in n.output:
                if o:
                    out[o] = (kernels[0], [m.name or f"{m.op_type}->{m.output[0]}" for m in real])
    return out


def localize(
    artifact_path: Path,
    reference_path: Path,
    root: Path,
    feeds: Mapping[str, np.ndarray],
    case: str,
    limit: float | None = None,
    limit_source: str = "",
    caps: Caps = Caps(),
    output: str | None = None,
    check_error: float | None = None,
    first_only: bool = False,
    reference_feeds: Mapping[str, np.ndarray] | None = None,
) -> Localization:
    """The table for one case: each comparable tensor's rel_l2 against the reference and the error it introduces.

    `output` and `check_error`: the failing output and its rel_l2 as the check measured it (reused, not rerun);
    `first_only`: stop at the first node over the limit (the hint under a failed check); `reference_feeds`: the
    case as the reference wants it (its own input dtypes: float32 for an fp16 artifact's samples), default `feeds`."""
    from model_checks.backends.onnx.loader import load_proto
    from model_checks.localize import sqnr

    ref_feeds = feeds if reference_feeds is None else reference_feeds
    start = time.monotonic()
    deadline = start + caps.time_s
    capd = {"time_s": caps.time_s, "memory_mb": caps.memory_mb, "basis": caps.basis}

    def result(**kw: Any) -> Localization:
        kw.setdefault("rows", ())
        kw.setdefault("skipped", ())
        kw.setdefault("absent", 0)
        return Localization(
            case, limit=limit, limit_source=limit_source, caps=capd, seconds=time.monotonic() - start, **kw
        )

    art = load_proto(artifact_path, root)
    ref = load_proto(reference_path, root)
    try:
        pairs, skipped, absent = match(art, ref, deadline)
    except TimeCapReached:
        return result(stopped="matching")
    if time.monotonic() > deadline:
        return result(absent=absent, unmeasured=len(pairs), stopped="time")

    table = _Table(pairs, Graph(art), limit, sqnr.is_qdq(art), caps, deadline, first_only)
    off = Exposed(art, feeds), Exposed(ref, ref_feeds)
    final: dict[str, Any] = {}

    def only_optimized() -> bool:
        """After the first unoptimized chunk (which also fetched the graph outputs): is the error over the
        tolerance only as the check ran, with graph optimizations on?"""
        name, off_err = _final(*off, output)
        on_err = check_error
        if on_err is None and limit is not None and (off_err is None or off_err <= limit):
            on_err = _final(Exposed(art, feeds, True), Exposed(ref, ref_feeds, True), name)[1]
        final.update(output=name, on=on_err, off=off_err)
        return limit is not None and on_err is not None and off_err is not None and on_err > limit >= off_err

    table.run(*off, {}, {}, {}, only_optimized)
    optimized = table.aborted or (not final and not table.stopped and only_optimized())
    fused: dict[str, tuple[Any, list[str]]] = {}
    if optimized:  # measured again as the check ran: the tensors that survive the rewrites, the fused nodes named
        artifact, reference = Exposed(art, feeds, True), Exposed(ref, ref_feeds, True)
        rewritten = artifact.rewritten()
        fused = _fused(art, rewritten)
        survive = {o for n in rewritten.graph.node for o in n.output} | {i.name for i in rewritten.graph.input}
        reads: dict[int, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {}
        gone: dict[int, str] = {}
        for k, p in enumerate(pairs):
            if p.tensor in survive:
                continue
            dq = table.graph.producer.get(p.tensor)
            read = dq is not None and dq.op_type == "DequantizeLinear" and dq.input[0] in survive
            if read and (f := _dequantize(table.graph, dq)):
                reads[k] = (dq.input[0], f)  # only names of the file can be exposed
            else:
                inside = fused.get(p.tensor)
                where = f" (inside {inside[0].op_type} '{inside[0].name}')" if inside else ""
                gone[k] = f"not computed as such once onnxruntime's graph optimizations rewrite the graph{where}"
        table = _Table(pairs, table.graph, limit, table.quantized, caps, deadline, first_only)
        table.run(artifact, reference, reads, gone, fused, None)
    weights = sqnr.weights(reference_path, artifact_path) if table.quantized and time.monotonic() <= deadline else []
    worst = tuple(sorted([*table.act_db, *weights], key=lambda s: s.db))
    fused_list = tuple(
        dict.fromkeys(f"{n.op_type} '{n.name}' (from {', '.join(names)})" for n, names in fused.values())
    )
    skip = [(s.tensor, s.reason) for s in skipped] + table.skip
    return result(
        rows=tuple(table.rows),
        skipped=tuple(skip),
        absent=absent,
        unmeasured=table.unmeasured,
        sqnr=worst,
        optimizations="on" if optimized else "off",
        final=final,
        fused=fused_list,
        stopped=table.stopped,
    )


class _Table:
    """The rows of one configuration, measured chunk by chunk in the artifact's order until the pairs, the
    time cap or (`first_only`) the first node over the limit run out."""

    def __init__(
        self,
        pairs: list[Any],
        graph: Graph,
        limit: float | None,
        quantized: bool,
        caps: Caps,
        deadline: float,
        first_only: bool,
    ):
        self.pairs, self.graph, self.limit, self.quantized = pairs, graph, limit, quantized
        self.caps, self.deadline, self.first_only = caps, deadline, first_only
        self.rows: list[Row] = []
        self.skip: list[tuple[str, str]] = []
        self.act_db: list[Sqnr] = []
        self.unmeasured = 0
        self.stopped = ""
        self.aborted = False

    def run(
        self,
        artifact: Exposed,
        reference: Exposed,
        reads: dict[int, tuple[str, Callable[[np.ndarray], np.ndarray]]],
        gone: dict[int, str],
        fused: dict[str, tuple[Any, list[str]]],
        abort: Callable[[], bool] | None,
    ) -> None:
        """`reads`: pairs read from another tensor (a quantized one) through a function; `gone`: pairs that cannot be
        read here, with why; `abort`, asked after the first chunk: whether to drop this run for another."""
        index: dict[tuple[str, str], int] = {}
        todo = []
        for k, p in enumerate(self.pairs):
            if k in gone:
                self.skip.append((p.tensor, gone[k]))
                continue
            pair = (reads[k][0] if k in reads else p.tensor, p.reference)
            index[pair] = k
            todo.append(pair)

        def measure(pair: tuple[str, str], got: np.ndarray, want: np.ndarray) -> Any:
            k = index[pair]
            return _measure(reads[k][1](got) if k in reads else got, want, self.quantized)

        levels = _Levels(self.graph)
        sources = {p.tensor: [n.input[0] for n in self.graph.source(p.tensor)[1]] for p in self.pairs} if fused else {}
        # a chunk is indivisible: one that would end past the cap never starts. Before the first, the check's own
        # time says what running both models costs; after it, the slowest chunk so far, with a margin
        decided, estimate = 0, self.caps.run_s
        chunks = measure_chunks(artifact, reference, todo, self.caps, measure)
        while True:
            if time.monotonic() + estimate > self.deadline:
                self.stopped = "time"
                break
            begun = time.monotonic()
            done = next(chunks, None)
            if done is None:
                break
            estimate = max(estimate if decided else 0.0, CHUNK_COST * (time.monotonic() - begun))
            if abort is not None and abort():
                self.aborted = True
                break
            abort = None
            decided += len(done)
            hit = False
            for pair, m in done.items():
                p = self.pairs[index[pair]]
                if isinstance(m, (str, Over)):
                    self.skip.append((p.tensor, str(m)))
                    continue
                err, db = m
                levels.errors[p.tensor] = err
                base = max((levels.of(i) for i in p.inputs), default=0.0)
                node, op, note = p.node, p.op, p.note
                key = next((x for x in (p.tensor, pair[0], *sources.get(p.tensor, ())) if x in fused), None)
                if key is not None:
                    n, names = fused[key]
                    node, op, note = n.name or node, n.op_type, f"fused from {', '.join(names)}"
                self.rows.append(Row(p.tensor, p.reference, node, op, err, err - base, note))
                hit = hit or (self.limit is not None and err - base > self.limit)
                if self.quantized and db is not None and p.tensor != p.reference:
                    self.act_db.append(Sqnr(p.reference, "activation", db, p.node))
            if self.first_only and hit:
                self.stopped = "first" if decided < len(todo) else ""
                break
        chunks.close()
        self.unmeasured = len(todo) - decided


def _dequantize(g: Graph, dq: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """What a DequantizeLinear computes, from its constant scale and zero point: for reading its value from the
    quantized tensor that survives onnxruntime's fusion where the DequantizeLinear itself does not."""
    from onnx import numpy_helper

    zp_name = dq.input[2] if len(dq.input) > 2 else ""
    if len(dq.input) < 2 or dq.input[1] not in g.inits or (zp_name and zp_name not in g.inits):
        return None
    scale = numpy_helper.to_array(g.inits[dq.input[1]]).astype(np.float32)
    zp = numpy_helper.to_array(g.inits[zp_name]).astype(np.int32) if zp_name else np.int32(0)
    if scale.size != 1 or np.size(zp) != 1:
        return None  # per-channel: the axis would have to be read too; such tensors are listed as not computed
    return lambda q: ((np.asarray(q).astype(np.int32) - zp) * scale).astype(np.float32)
