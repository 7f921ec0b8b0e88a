"""Facts read off a Keras model or SavedModel without running it: interface, weight dtypes, layers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from model_checks.backends.base import ModelFacts, Names
from model_checks.backends.keras.loader import check_keras_zip, kind_of, load_model, serving_signature
from model_checks.backends.precision import FLOAT_NAMES, float_precision
from model_checks.manifest.model import TensorSpec

GRAPH_BOOKKEEPING = {
    "Placeholder",
    "Const",
    "NoOp",
    "Identity",
    "ReadVariableOp",
    "StatefulPartitionedCall",
    "PartitionedCall",
}


def _dim(d: Any, i: int) -> int | str:
    if d is not None:
        return int(d)
    return "batch" if i == 0 else "?"  # Keras' leading None is the batch by construction


def spec_of(name: str, t: Any) -> TensorSpec:
    shape = None if t.shape.rank is None else tuple(_dim(d, i) for i, d in enumerate(t.shape.as_list()))
    return TensorSpec(name=name, dtype=t.dtype.name, shape=shape)


def interface(kind: str, fn: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Named inputs and outputs: a Keras model's input/output layer names, or the signature's keys."""
    if kind == "saved_model":
        ins = fn.structured_input_signature[1]
        outs = fn.structured_outputs
        return tuple(spec_of(n, t) for n, t in ins.items()), tuple(spec_of(n, t) for n, t in outs.items())
    return (
        tuple(spec_of(n, t) for n, t in zip(fn.input_names, fn.inputs)),
        tuple(spec_of(n, t) for n, t in zip(fn.output_names, fn.outputs)),
    )


def all_layers(model: Any) -> Iterator[Any]:
    """Every layer, nested models entered (the nested model itself included)."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


def precision_of(variables: list[Any], compute_dtypes: set[str]) -> tuple[str, str]:
    elems: Counter = Counter()
    for v in variables:
        elems[v.dtype.name] += int(v.shape.num_elements() or 0)
    floats = {k: v for k, v in elems.items() if k in FLOAT_NAMES}
    low = sorted(d for d in compute_dtypes if d in ("float16", "bfloat16"))
    if low and floats.get("float32"):
        return "mixed", f"variables are float32 but layers compute in {', '.join(low)} (a mixed-precision policy)"
    q8 = sum(v for k, v in elems.items() if k in ("int8", "uint8"))
    if q8:
        return "int8", f"{q8} 8-bit weight values"
    return float_precision(elems)


def model_facts(path: Path, root: Path, names: Names = None) -> ModelFacts:
    kind, obj = load_model(path)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    if kind == "saved_model":
        fn = serving_signature(obj, path)
        ops = Counter(op.type for op in fn.graph.get_operations() if op.type not in GRAPH_BOOKKEEPING)
        for f in fn.graph._functions.values():  # the Keras call lives in a nested function
            ops.update(n.op for n in f.definition.node_def if n.op not in GRAPH_BOOKKEEPING)
        prec, why = precision_of(list(getattr(obj, "variables", [])), set())
        ins, outs = interface(kind, fn)
        return ModelFacts(
            format="saved_model", precision=prec, precision_why=why, inputs=ins, outputs=outs, ops=ops, size_bytes=size
        )
    layers = list(all_layers(obj))
    ops = Counter(type(layer).__name__ for layer in layers if not hasattr(layer, "layers"))
    compute = {str(getattr(layer, "compute_dtype", None)) for layer in layers}
    prec, why = precision_of(obj.weights, compute)
    ins, outs = interface(kind, obj)
    return ModelFacts(
        format="keras", precision=prec, precision_why=why, inputs=ins, outputs=outs, ops=ops, size_bytes=size
    )


def validate(path: Path, root: Path) -> list[str]:
    """Integrity problems: a .keras archive's CRCs and config, then the model must load (safe mode for .keras)."""
    if kind_of(path) == "keras" and (problems := check_keras_zip(path)):
        return problems
    load_model(path)
    return []
