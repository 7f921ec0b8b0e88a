"""What every producer does before it writes: the result is put in topological order, passed through
onnx.checker, loaded and run by onnxruntime, and compared with its source under the gate's own metrics. Any
failure is a ProducerError that says why and how to fix it, and nothing is written (`verified`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from model_checks.core.errors import ProducerError
from model_checks.core.metrics import Comparison, compare_outputs
from model_checks.manifest.model import Limit, TensorSpec

# Exact conversions (export, graph passes) must agree to float32 rounding.
EXACT = {"rel_l2": 1e-4, "max_abs": 1e-3}


def compare(
    got: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    tolerance: Mapping[str, float | None] | None = None,
    source: str = "producer default",
) -> Comparison:
    """`got` against `expected`, output by output, under `tolerance` (metric -> limit; None drops a metric)."""
    limits = {
        m: Limit(float(v), source) for m, v in (EXACT if tolerance is None else tolerance).items() if v is not None
    }
    return compare_outputs(got, expected, lambda _name: limits)


def require_match(
    got: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    what: str,
    tolerance: Mapping[str, float | None] | None = None,
) -> Comparison:
    """Compare and raise a ProducerError that shows the comparison when the outputs differ."""
    c = compare(got, expected, tolerance)
    if not c:
        raise ProducerError(
            "\n".join([f"{what}: outputs differ from the source model; nothing was written", *c.render()])
        )
    return c


def onnx_outputs(
    model: bytes | str | Path, feeds: Mapping[str, np.ndarray], config: Mapping[str, str] | None = None
) -> dict[str, np.ndarray]:
    """Run an ONNX model (bytes or a path) on CPU once, with session `config` entries; outputs by name."""
    from model_checks.backends.onnx.runtime import onnxruntime

    ort = onnxruntime()

    from model_checks.backends.onnx.runner import as_array, map_value_dtype, session_options

    so = session_options()
    for key, value in (config or {}).items():
        so.add_session_config_entry(key, value)
    sess = ort.InferenceSession(
        model if isinstance(model, bytes) else str(model), so, providers=["CPUExecutionProvider"]
    )
    outs = sess.get_outputs()
    values = sess.run([o.name for o in outs], dict(feeds))
    return {
        o.name: as_array(o.name, v, map_value_dtype(o.type)) for o, v in zip(outs, values)
    }  # ZipMap maps as arrays, as the gate reads them


def source_outputs(src: Path, feeds: Mapping[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    """The source model's outputs on `feeds`, the reference a result is compared with; a ProducerError when
    onnxruntime cannot run it (samples named or shaped unlike its inputs, a model it refuses)."""
    try:
        return onnx_outputs(src, feeds)
    except Exception as e:  # onnxruntime's own exception types
        head = f"{what}: onnxruntime cannot run the source model {Path(src).name} on the inputs to compare on ({_first_line(e)})"
        raise ProducerError(
            f"{head}; nothing was written; check the samples' names and shapes (samples=)",
            cli=f"{head}; nothing was written; check the names and shapes of the arrays in --samples",
        ) from None


def input_specs(model) -> list[TensorSpec]:  # type: ignore[no-untyped-def]
    """A ModelProto's real inputs (initializers listed as inputs left out), as the gate reads them: with the index
    range the graph proves (an input that indexes an embedding's rows)."""
    from model_checks.backends.onnx.facts import input_specs as graph_inputs

    return list(graph_inputs(model.graph))


def _why_not_generated(spec: TensorSpec) -> str | None:
    """Why seeded values for `spec` would prove nothing, or None when they can be generated."""
    dtype = spec.dtype or "float32"
    if spec.shape is None:
        return f"input '{spec.name}' has no shape in the model"
    if dtype.startswith(("int", "uint")) and spec.range is None:
        return (
            f"input '{spec.name}' ({dtype}) has no range the graph proves (an index into an embedding's rows), so seeded "
            "values could be ids the model cannot take"
        )
    if not (dtype.startswith(("float", "int", "uint", "bfloat")) or dtype == "bool"):
        return f"input '{spec.name}' is {dtype}: only numbers and bools can be generated"
    return None


def seeded_feeds(model, batch: int = 2, seed: int = 0, what: str = "producer") -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Seeded inputs from a ModelProto's own interface, as the gate generates them; a ProducerError that asks for
    samples (`samples=` in Python, `--samples` on the command line) when they would prove nothing."""
    from model_checks.core.errors import InputGenerationError
    from model_checks.core.inputs import generate

    specs = input_specs(model)
    why = next((w for s in specs if (w := _why_not_generated(s))), None)
    if why is None:
        try:
            return generate(specs, batch=batch, seed=seed)
        except InputGenerationError as e:
            why = str(e).split("; ")[0]
    names = ", ".join(f"'{s.name}'" for s in specs)
    head = f"{what}: cannot compare the result with its source on generated inputs: {why}; nothing was written"
    raise ProducerError(
        f"{head}; pass samples (a dict of arrays named by input: {names})",
        cli=f"{head}; pass --samples FILE.npz (arrays named by input: {names})",
    )


@dataclass(frozen=True)
class Verified:
    """A result that passed onnx.checker, onnxruntime and the comparison with its source: the bytes to write."""

    data: bytes
    comparison: Comparison
    notes: tuple[str, ...] = ()  # repairs made on the way ("nodes sorted topologically")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300]}" if text else type(e).__name__


def verified(
    model: Any,
    what: str,
    feeds: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    tolerance: Mapping[str, float | None] | None = None,
    hint: str = "",
    cli_hint: str | None = None,
    config: Mapping[str, str] | None = None,
) -> Verified:
    """The one check every ONNX producer runs on what it is about to write (a ModelProto, repaired in place): nodes
    put in topological order, onnx.checker, an onnxruntime session, and the outputs on `feeds` compared with
    `expected` (the source's, float outputs compared in the source's dtype) under `tolerance`. A failure is a
    ProducerError naming the step, ending with `hint` (how to fix it; `cli_hint` the same in the CLI's flags) when given.
    `config`: onnxruntime session config entries for the result's session."""
    import onnx

    from model_checks.producers.onnx_graph import toposort

    fix = f"; {hint}" if hint else ""
    cli_fix = f"; {cli_hint}" if cli_hint else None
    notes = ("nodes sorted topologically (onnx.checker requires it)",) if toposort(model) else ()
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as e:
        head = f"{what}: the result is not a valid ONNX model (onnx.checker: {_first_line(e)}); nothing was written"
        raise ProducerError(head + fix, cli=cli_fix and head + cli_fix) from None
    data = model.SerializeToString()
    try:
        got = onnx_outputs(data, feeds, config)
    except Exception as e:  # onnxruntime raises its own Fail, InvalidGraph, InvalidArgument...
        head = f"{what}: onnxruntime cannot run the result ({_first_line(e)}); nothing was written"
        raise ProducerError(head + fix, cli=cli_fix and head + cli_fix) from None
    got = {
        k: (v.astype(expected[k].dtype) if v.dtype.kind == "f" and expected[k].dtype.kind == "f" else v)
        for k, v in got.items()
        if k in expected
    }  # outputs the source does not have (skl2onnx's tensors behind ZipMap) aside
    c = compare(got, expected, tolerance)
    if not c:
        head = f"{what}: outputs differ from the source model; nothing was written"
        table = "\n".join(c.render())
        raise ProducerError(f"{head}{fix}\n{table}", cli=cli_fix and f"{head}{cli_fix}\n{table}")
    return Verified(data, c, notes)
