"""ONNX fp32 -> fp16 with onnxconverter-common, optionally keeping fp32 inputs and outputs (so callers and
an fp32 reference see the same dtypes), checked against the source before it is written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from model_checks.core.fileio import write_bytes
from model_checks.core.metrics import Comparison
from model_checks.producers.verify import ProducerError, seeded_feeds, source_outputs, verified

# fp16 keeps ~3 significant digits: what a converted classifier's outputs hold against fp32.
FP16_TOLERANCE = {"rel_l2": 1e-2}


@dataclass(frozen=True)
class Fp16Result:
    path: Path
    keep_io_types: bool
    source_bytes: int
    size_bytes: int
    comparison: Comparison

    def __str__(self) -> str:
        return (
            f"{self.path}: fp16{' (fp32 inputs/outputs kept)' if self.keep_io_types else ''}; {self.source_bytes / 1e6:.3f} MB -> "
            f"{self.size_bytes / 1e6:.3f} MB; worst rel_l2 against fp32 {self.comparison.worst('rel_l2'):.2g}"
        )


def _graphs(graph):  # type: ignore[no-untyped-def]
    """`graph` and every subgraph below it (If branches, Loop and Scan bodies)."""
    yield graph
    for node in graph.node:
        for a in node.attribute:
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _graphs(g)


def _casts_follow_types(model):  # type: ignore[no-untyped-def]
    """onnxconverter-common turns the value types after a `Cast(to=float)` into float16 but leaves the Cast's
    `to` (a mask cast to float in a transformer, a shape cast to float inside an If branch): onnxruntime then
    refuses the model. Make each such Cast, in the graph and in its subgraphs, produce the type its output was given."""
    import onnx

    fp16_values = {
        v.name
        for g in _graphs(model.graph)
        for v in [*g.value_info, *g.output]
        if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    }
    for g in _graphs(model.graph):
        for node in g.node:
            if node.op_type == "Cast" and node.output[0] in fp16_values:
                for a in node.attribute:
                    if a.name == "to" and a.i == onnx.TensorProto.FLOAT:
                        a.i = onnx.TensorProto.FLOAT16
    return model


def to_fp16(
    src: str | Path,
    dst: str | Path,
    keep_io_types: bool = True,
    samples: Mapping[str, np.ndarray] | None = None,
    tolerance: Mapping[str, float | None] | None = None,
) -> Fp16Result:
    """Convert `src` to fp16 at `dst`. The result goes through `verify.verified` (onnx.checker, onnxruntime, and
    the outputs on `samples`, or seeded inputs, under `tolerance`, default rel_l2 1e-2) before it is written; with
    `keep_io_types=False` it is fed fp16 inputs and its outputs are cast up to compare."""
    import onnx
    from onnxconverter_common import float16

    src = Path(src)
    if not src.is_file():
        raise ProducerError(f"model: {src} does not exist")
    model = onnx.load(str(src))
    feeds = dict(samples) if samples is not None else seeded_feeds(model, what="fp16")
    want = source_outputs(src, feeds, "fp16")
    try:
        converted = _casts_follow_types(float16.convert_float_to_float16(model, keep_io_types=keep_io_types))
    except Exception as e:  # the converter asserts and raises on graphs it does not expect
        raise ProducerError(
            f"fp16: onnxconverter-common could not convert {src.name} ({type(e).__name__}: "
            f"{str(e).strip().splitlines()[0][:300] if str(e).strip() else 'no message'}); nothing was written"
        ) from None
    half = {k: (v.astype(np.float16) if not keep_io_types and v.dtype == np.float32 else v) for k, v in feeds.items()}
    hint = "" if keep_io_types else "try keeping fp32 inputs and outputs (keep_io_types=True)"
    try:
        v = verified(converted, "fp16 conversion", half, want, tolerance or FP16_TOLERANCE, hint)
    except ProducerError as e:
        raise ProducerError(str(e), cli=str(e).replace("(keep_io_types=True)", "(--keep-io-types)")) from None
    write_bytes(Path(dst), v.data)
    return Fp16Result(Path(dst), keep_io_types, src.stat().st_size, len(v.data), v.comparison)
