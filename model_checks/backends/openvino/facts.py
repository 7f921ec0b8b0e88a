"""Facts read off an OpenVINO IR: interface, ops and precision from its graph. An ONNX file's facts are the ONNX
backend's: the runtime that runs it does not change what it is."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from model_checks.backends.base import ModelFacts, Names
from model_checks.backends.openvino.loader import check_ir, ir_weights, is_ir, read_model
from model_checks.backends.precision import float_precision
from model_checks.core.errors import ModelChecksError

QUANT_TYPES = {"FakeQuantize", "FakeConvert"}


def precision_of(tree) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(precision, why) from the Const layers' element types, weighed by size, and FakeQuantize layers."""
    elems: Counter = Counter()
    types = Counter(layer.get("type") for layer in tree.iter("layer"))
    for layer in tree.iter("layer"):
        if layer.get("type") != "Const":
            continue
        for d in layer.iter("data"):
            et = d.get("element_type", "")
            name = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "i8": "int8", "u8": "uint8"}.get(et, et)
            try:
                elems[name] += int(d.get("size") or 0) // max(1, np.dtype(name).itemsize if name != "bfloat16" else 2)
            except TypeError:
                elems[name] += int(d.get("size") or 0)
    q8 = {k: elems[k] for k in ("int8", "uint8") if elems[k]}
    if q8 and (types.keys() & QUANT_TYPES or types.get("Convert")):
        kind = max(q8, key=q8.get)  # type: ignore[arg-type]
        return (
            kind,
            f"{q8[kind]} {kind} weight values with "
            f"{', '.join(sorted(types.keys() & (QUANT_TYPES | {'Convert'})))} layers",
        )
    return float_precision(elems, "Const")


def model_facts(path: Path, root: Path, names: Names = None) -> ModelFacts:
    if not is_ir(path):
        from model_checks.backends.onnx.facts import model_facts as onnx_facts

        return onnx_facts(path, root, names)
    from model_checks.backends.openvino.runner import port_spec

    tree, weights = check_ir(path, root)
    model = read_model(path, root)
    prec, why = precision_of(tree)
    ops = Counter(layer.get("type") for layer in tree.iter("layer"))
    size = path.stat().st_size + (weights.stat().st_size if weights else 0)
    return ModelFacts(
        format="openvino",
        precision=prec,
        precision_why=why,
        inputs=tuple(port_spec(p) for p in model.inputs),
        outputs=tuple(port_spec(p) for p in model.outputs),
        ops=ops,
        size_bytes=size,
    )


def validate(path: Path, root: Path) -> list[str]:
    """Integrity: the IR (or ONNX file) reads into OpenVINO and its weights file is where the XML says."""
    if is_ir(path) and not ir_weights(path).exists():
        tree, _ = check_ir(path, root)
        if any(layer.get("type") == "Const" for layer in tree.iter("layer")):
            return [f"{path.name}: its weights file {ir_weights(path).name} is missing"]
    try:
        read_model(path, root)
    except ModelChecksError as e:
        return [str(e)]
    return []
