"""PyTorch -> ONNX through either exporter, with named inputs and outputs and a dynamic batch; the exported
model is run by onnxruntime on the example inputs and compared with PyTorch before it is written."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from model_checks.core.fileio import write_bytes
from model_checks.core.metrics import Comparison
from model_checks.producers.progress import stages
from model_checks.producers.verify import ProducerError, Verified, onnx_outputs, require_match, verified

EXPORTERS = ("torchscript", "dynamo")
DEFAULT_OPSET = 17


@dataclass(frozen=True)
class ExportResult:
    path: Path
    exporter: str
    opset: int
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    comparison: Comparison

    def __str__(self) -> str:
        worst = self.comparison.worst("rel_l2")
        return f"{self.path} ({self.exporter} exporter, opset {self.opset}): matches PyTorch, worst rel_l2 {worst:.2g}"


def as_tuple(example: Any) -> tuple[Any, ...]:
    return tuple(example) if isinstance(example, (tuple, list)) else (example,)


def torch_outputs(
    model: Any, example: tuple[Any, ...], output_names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Outputs of `model` by name (a single tensor, or a tuple/list in `output_names` order; `output_<i>` without names)."""
    import torch

    with torch.no_grad():
        out = model(*example)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    if output_names is None:
        output_names = [f"output_{i}" for i in range(len(outs))]
    if len(outs) != len(output_names):
        raise ProducerError(
            f"output_names: {len(output_names)} name(s) {list(output_names)} for {len(outs)} model output(s)"
        )
    return {n: o.detach().cpu().numpy() for n, o in zip(output_names, outs)}


def _export_bytes(
    model: Any,
    example: tuple[Any, ...],
    input_names: Sequence[str],
    output_names: Sequence[str],
    opset: int,
    dynamo: bool,
    batch_axis: str | None,
    fold_constants: bool,
    keep_debug: bool = False,
) -> bytes:
    import torch

    if dynamo:
        shapes = tuple({0: torch.export.Dim(batch_axis, min=1)} for _ in example) if batch_axis else None
        program = torch.onnx.export(
            model,
            example,
            dynamo=True,
            input_names=list(input_names),
            output_names=list(output_names),
            opset_version=opset,
            dynamic_shapes=shapes,
            optimize=fold_constants,
            verbose=False,
        )
        return (program.model_proto if keep_debug else _without_stack_traces(program.model_proto)).SerializeToString()
    axes = {n: {0: batch_axis} for n in [*input_names, *output_names]} if batch_axis else None
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", DeprecationWarning
        )  # choosing the TorchScript-based exporter is deliberate here
        torch.onnx.export(
            model,
            example,
            buf,
            dynamo=False,
            input_names=list(input_names),
            output_names=list(output_names),
            opset_version=opset,
            dynamic_axes=axes,
            do_constant_folding=fold_constants,
        )
    return buf.getvalue()


# The dynamo exporter's note on each node naming the source lines it came from: absolute paths of the build machine
# (the user's files, its Python install) and line numbers. The artifact would differ from one checkout, machine or
# edit above `forward()` to the next, and would carry those paths to whoever it is shipped to. Its other notes
# (module names, class hierarchy, the FX node) say the same on every machine and stay.
STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"


def _without_stack_traces(model: Any) -> Any:
    """`model` (a ModelProto) without STACK_TRACE_KEY on any node: the main graph's, its subgraphs' (If, Loop,
    Scan bodies) and its functions'."""
    import onnx

    def graphs_of(nodes: Any) -> Any:
        for node in nodes:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    yield attr.g
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    yield from attr.graphs

    def clean(nodes: Any) -> None:
        for node in nodes:
            kept = [p for p in node.metadata_props if p.key != STACK_TRACE_KEY]
            if len(kept) != len(node.metadata_props):
                del node.metadata_props[:]
                node.metadata_props.extend(kept)
        for graph in list(graphs_of(nodes)):
            clean(graph.node)

    clean(model.graph.node)
    for function in model.functions:
        clean(function.node)
    return model


def export_onnx(
    model: Any,
    example: Any,
    path: str | Path,
    *,
    input_names: Sequence[str] = ("input",),
    output_names: Sequence[str] = ("output",),
    opset: int = DEFAULT_OPSET,
    exporter: str = "torchscript",
    batch_axis: str | None = "batch",
    fold_constants: bool = True,
    tolerance: Mapping[str, float | None] | None = None,
    keep_debug: bool = False,
) -> ExportResult:
    """Export `model` (eval mode) on `example` inputs to `path`.

    `exporter`: "torchscript" (torch.onnx.export dynamo=False) or "dynamo" (torch.export-based; needs onnxscript).
    `batch_axis`: the name of the dynamic leading dimension of every input and output; None for fixed shapes.
    `fold_constants=False` keeps the graph as the model is written (a BatchNormalization stays one), for an
    optimizer to fuse later. The dynamo exporter's per-node source lines (the build machine's paths) are dropped
    unless `keep_debug`, as `torchscript.to_torchscript` drops its debug records: the same model exported from
    another checkout or machine gives the same bytes. Before writing, onnxruntime's outputs are compared with
    PyTorch's at the example's batch size and, with a dynamic batch, at one more, under `tolerance` (default:
    float32 rounding).
    """
    if exporter not in EXPORTERS:
        raise ProducerError(f"exporter: {exporter!r} is not one of {', '.join(EXPORTERS)}")
    example = as_tuple(example)
    if len(input_names) != len(example):
        raise ProducerError(
            f"input_names: {len(input_names)} name(s) {list(input_names)} for {len(example)} example input(s)"
        )
    model = model.eval()
    expected = torch_outputs(model, example, output_names)
    with stages(f"export ({exporter})", 2) as done:
        try:
            data = _export_bytes(
                model,
                example,
                input_names,
                output_names,
                opset,
                exporter == "dynamo",
                batch_axis,
                fold_constants,
                keep_debug,
            )
        except Exception as e:  # the exporters raise many types; the user needs the first lines
            first = " ".join(str(e).strip().splitlines()[:3])[:500]
            raise ProducerError(f"the {exporter} exporter failed: {type(e).__name__}: {first}") from e
        done("exported")
        checked = _check(model, example, expected, data, input_names, output_names, exporter, batch_axis, tolerance)
        done("checked against PyTorch")
    data, comparison = checked.data, checked.comparison
    write_bytes(Path(path), data)
    import onnx

    opset_seen = next(o.version for o in onnx.load_from_string(data).opset_import if o.domain in ("", "ai.onnx"))
    return ExportResult(Path(path), exporter, opset_seen, tuple(input_names), tuple(output_names), comparison)


def _check(
    model: Any,
    example: tuple[Any, ...],
    expected: dict[str, np.ndarray],
    data: bytes,
    input_names: Sequence[str],
    output_names: Sequence[str],
    exporter: str,
    batch_axis: str | None,
    tolerance: Mapping[str, float | None] | None,
) -> Verified:
    """The export through `verify.verified` at the example's batch and, with a dynamic batch, against PyTorch at one more sample."""
    import torch

    cases = [example]
    if batch_axis:
        cases.append(tuple(torch.cat([t, t[:1]]) for t in example))  # one more sample: the batch must really be dynamic
    import onnx

    feeds = [{n: t.detach().cpu().numpy() for n, t in zip(input_names, case)} for case in cases]
    v = verified(
        onnx.load_from_string(data), f"{exporter} export at batch {len(example[0])}", feeds[0], expected, tolerance
    )
    for case, feed in zip(cases[1:], feeds[1:]):
        require_match(
            onnx_outputs(v.data, feed),
            torch_outputs(model, case, output_names),
            f"{exporter} export at batch {len(case[0])}",
            tolerance,
        )
    return v
