"""Graph optimization with named onnxoptimizer passes; the optimized model's outputs are compared with the
input model's before it is written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from model_checks.metrics import Comparison
from model_checks.producers.verify import ProducerError, atomic_write, onnx_outputs, require_match, seeded_feeds

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

    def __str__(self) -> str:
        return f"{self.path}: {len(self.passes)} pass(es), {self.nodes_before} -> {self.nodes_after} nodes; outputs match the input model"


def check_passes(passes: Sequence[str]) -> tuple[str, ...]:
    """The passes, each known to onnxoptimizer; an unknown one names the closest known."""
    import difflib

    import onnxoptimizer

    known = onnxoptimizer.get_available_passes()
    for p in passes:
        if p not in known:
            near = difflib.get_close_matches(p, known, n=1)
            raise ProducerError(f"passes: {p!r} is not an onnxoptimizer pass" + (f"; did you mean {near[0]!r}?" if near else ""))
    return tuple(passes)


def optimize(src: str | Path, dst: str | Path, passes: Sequence[str] = DEFAULT_PASSES, samples: Mapping[str, np.ndarray] | None = None,
             tolerance: Mapping[str, float | None] | None = None) -> OptimizeResult:
    """Run `passes` on `src`; write `dst` only when the outputs on `samples` (or seeded inputs) still match."""
    import onnx
    import onnxoptimizer

    src = Path(src)
    if not src.is_file():
        raise ProducerError(f"model: {src} does not exist")
    passes = check_passes(passes)
    model = onnx.load(str(src))
    optimized = onnxoptimizer.optimize(model, list(passes))
    data = optimized.SerializeToString()
    feeds = dict(samples) if samples is not None else seeded_feeds(model)
    comparison = require_match(onnx_outputs(data, feeds), onnx_outputs(src, feeds), "optimize", tolerance)
    atomic_write(Path(dst), data)
    return OptimizeResult(Path(dst), passes, len(model.graph.node), len(optimized.graph.node), comparison)
