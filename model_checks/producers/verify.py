"""Outputs checked before a producer writes anything: the gate's own metrics, failing as a ProducerError."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from model_checks.core.errors import ProducerError
from model_checks.manifest.model import Limit, TensorSpec
from model_checks.core.metrics import Comparison, compare_outputs

# Exact conversions (export, graph passes) must agree to float32 rounding.
EXACT = {"rel_l2": 1e-4, "max_abs": 1e-3}


def compare(got: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray], tolerance: Mapping[str, float | None] | None = None,
            source: str = "producer default") -> Comparison:
    """`got` against `expected`, output by output, under `tolerance` (metric -> limit; None drops a metric)."""
    limits = {m: Limit(float(v), source) for m, v in (EXACT if tolerance is None else tolerance).items() if v is not None}
    return compare_outputs(got, expected, lambda _name: limits)


def require_match(got: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray], what: str, tolerance: Mapping[str, float | None] | None = None) -> Comparison:
    """Compare and raise a ProducerError that shows the comparison when the outputs differ."""
    c = compare(got, expected, tolerance)
    if not c:
        raise ProducerError("\n".join([f"{what}: outputs differ from the source model; nothing was written", *c.render()]))
    return c


def onnx_outputs(model: bytes | str | Path, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run an ONNX model (bytes or a path) on CPU once; outputs by name."""
    import onnxruntime as ort

    from model_checks.backends.onnx.runner import as_array, map_value_dtype, session_options

    sess = ort.InferenceSession(model if isinstance(model, bytes) else str(model), session_options(), providers=["CPUExecutionProvider"])
    outs = sess.get_outputs()
    values = sess.run([o.name for o in outs], dict(feeds))
    return {o.name: as_array(o.name, v, map_value_dtype(o.type)) for o, v in zip(outs, values)}  # ZipMap maps as arrays, as the gate reads them  # ZipMap maps as arrays, as the gate reads them


def input_specs(model) -> list[TensorSpec]:  # type: ignore[no-untyped-def]
    """A ModelProto's real inputs (initializers listed as inputs left out), as the gate reads them."""
    from model_checks.backends.onnx.facts import value_spec

    inits = {i.name for i in model.graph.initializer}
    return [value_spec(v) for v in model.graph.input if v.name not in inits]


def seeded_feeds(model, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Seeded inputs from a ModelProto's own interface, as the gate generates them."""
    from model_checks.core.inputs import generate

    return generate(input_specs(model), batch=batch, seed=seed)
