"""Graph optimization with named onnxoptimizer passes; the optimized model's outputs are compared with the
input model's before it is written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from model_checks.core.fileio import write_bytes
from model_checks.core.metrics import Comparison
from model_checks.producers.verify import ProducerError, _first_line, seeded_feeds, source_outputs, verified

# Passes that leave the function unchanged and only remove or fuse nodes: a safe default.
DEFAULT_PASSES = (
    "eliminate_deadend",
    "eliminate_identity",
    "eliminate_nop_dropout",
    "eliminate_nop_transpose",
    "eliminate_unused_initializer",
    "fuse_add_bias_into_conv",
    "fuse_bn_into_conv",
    "fuse_consecutive_transposes",
    "fuse_matmul_add_bias_into_gemm",
)


@dataclass(frozen=True)
class OptimizeResult:
    path: Path
    passes: tuple[str, ...]
    nodes_before: int
    nodes_after: int
    comparison: Comparison
    notes: tuple[str, ...] = ()  # repairs made before writing

    def __str__(self) -> str:
        return (
            f"{self.path}: {len(self.passes)} pass(es), {self.nodes_before} -> {self.nodes_after} nodes; outputs match the input model"
            + "".join(f"; {n}" for n in self.notes)
        )


def check_passes(passes: Sequence[str]) -> tuple[str, ...]:
    """The passes, each known to onnxoptimizer; an unknown one names the closest known."""
    import difflib

    import onnxoptimizer

    known = onnxoptimizer.get_available_passes()
    for p in passes:
        if p not in known:
            near = difflib.get_close_matches(p, known, n=1)
            raise ProducerError(
                f"passes: {p!r} is not an onnxoptimizer pass" + (f"; did you mean {near[0]!r}?" if near else "")
            )
    return tuple(passes)


def fold_constants(model):  # type: ignore[no-untyped-def]
    """Evaluate every default-domain node whose inputs are all constant, and store its outputs as initializers.

    onnxoptimizer's fuse_bn_into_conv writes the fused weights as a subgraph over the old initializers (Add,
    Sqrt, Div, Mul...) and leaves folding to a later tool; without this the "optimized" graph grows.
    """
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    # A lone NodeProto is evaluated at the latest opset: an opset-12 Unsqueeze (axes an attribute) is then read as
    # opset 13's (axes an input) and fails. So each node is evaluated as a one-node model at the model's opsets.
    def evaluate(node, feeds):  # type: ignore[no-untyped-def]
        one = helper.make_graph(
            [node],
            "fold",
            [helper.make_empty_tensor_value_info(i) for i in node.input if i],
            [helper.make_empty_tensor_value_info(o) for o in node.output],
        )
        return ReferenceEvaluator(helper.make_model(one, opset_imports=model.opset_import)).run(None, feeds)

    graph = model.graph
    known = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    graph_inputs = {i.name for i in graph.input}
    kept, folded = [], []
    for node in graph.node:
        constant = (
            node.domain in ("", "ai.onnx")
            and not any(a.g.node or a.graphs for a in node.attribute)
            and all(i == "" or (i in known and i not in graph_inputs) for i in node.input)
        )
        if not constant:
            kept.append(node)
            continue
        try:
            outs = evaluate(node, {i: known[i] for i in node.input if i})
        except Exception:  # the reference evaluator lacks an op or an opset's form: leave the node to onnxruntime
            kept.append(node)
            continue
        for name, value in zip(node.output, outs):
            known[name] = np.asarray(value)
            folded.append(name)
    if not folded:
        return model
    del graph.node[:]
    graph.node.extend(kept)
    used = {i for n in kept for i in n.input} | {o.name for o in graph.output}
    old = {i.name: i for i in graph.initializer}
    del graph.initializer[:]
    graph.initializer.extend(old[n] if n in old else numpy_helper.from_array(known[n], n) for n in known if n in used)
    return model


def optimize(
    src: str | Path,
    dst: str | Path,
    passes: Sequence[str] = DEFAULT_PASSES,
    samples: Mapping[str, np.ndarray] | None = None,
    tolerance: Mapping[str, float | None] | None = None,
) -> OptimizeResult:
    """Run `passes` on `src`, then fold what became constant; write `dst` only when the outputs on `samples`
    (or seeded inputs) still match."""
    import onnx
    import onnxoptimizer

    src = Path(src)
    if not src.is_file():
        raise ProducerError(f"model: {src} does not exist")
    passes = check_passes(passes)
    model = onnx.load(str(src))
    feeds = dict(samples) if samples is not None else seeded_feeds(model, what="optimize")
    want = source_outputs(src, feeds, "optimize")
    nodes_before = len(model.graph.node)
    try:
        optimized = onnxoptimizer.optimize(model, list(passes))
    except Exception as e:  # onnxoptimizer raises bare RuntimeErrors from C++
        raise ProducerError(
            f"optimize: onnxoptimizer failed on {src.name} ({_first_line(e)}); nothing was written; "
            "leave out the pass that fails (passes=[...])",
            cli=f"optimize: onnxoptimizer failed on {src.name} "
            f"({_first_line(e)}); nothing was written; leave out the pass that fails (--passes A,B)",
        ) from None
    v = verified(fold_constants(optimized), "optimize", feeds, want, tolerance)
    write_bytes(Path(dst), v.data)
    return OptimizeResult(Path(dst), passes, nodes_before, len(optimized.graph.node), v.comparison, v.notes)
