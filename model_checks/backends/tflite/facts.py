"""Facts read off a TFLite flatbuffer: the interface (dtype, shape with `shape_signature`'s dynamic dims,
quantization scale and zero point), the operator codes (builtin, Flex and custom), the constant tensors'
types, and from them the precision: float32, float16 weights, dynamic range (int8 weights, float
activations) or full integer (int8 weights and activations)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from model_checks.backends.base import ModelFacts, Names
from model_checks.backends.precision import float_precision
from model_checks.backends.tflite.loader import CUSTOM_CODE, open_interpreter, operator_codes, read_model, signature_io
from model_checks.core.errors import ArtifactLoadError
from model_checks.manifest.model import QuantParams, TensorSpec

QUANTIZED_IO = ("int8", "uint8", "int16")


def _dim(d: int, i: int) -> int | str:
    if d >= 0:
        return int(d)
    return "batch" if i == 0 else "?"  # a converter's leading -1 is the source model's batch


def quant_params(name: str, details: dict) -> QuantParams | None:
    """Per-tensor quantization of an int8/uint8/int16 tensor; None for a float tensor. Per-axis parameters on
    an input or output have no single scale to quantize samples with: refused, naming the tensor."""
    dtype = np.dtype(details["dtype"]).name
    qp = details.get("quantization_parameters") or {}
    scales, zeros = np.asarray(qp.get("scales", ())), np.asarray(qp.get("zero_points", ()))
    if dtype not in QUANTIZED_IO or scales.size == 0:
        return None
    if scales.size > 1:
        raise ArtifactLoadError(
            f"tensor '{name}': {scales.size} per-axis scales on a model input or output; the gate quantizes "
            "inputs and dequantizes outputs with one scale and zero point per tensor"
        )
    scale, zero = float(scales[0]), int(zeros[0]) if zeros.size else 0
    info = np.iinfo(np.dtype(dtype))
    if not np.isfinite(scale) or scale <= 0 or not info.min <= zero <= info.max:
        raise ArtifactLoadError(
            f"tensor '{name}': quantization scale {scale:g} and zero point {zero} cannot map {dtype} values "
            f"(the scale must be finite and > 0, the zero point within [{info.min}, {info.max}])"
        )
    return QuantParams(scale, zero, dtype)


def spec_of(name: str, details: dict) -> TensorSpec:
    """The tensor as the model stores it: its own dtype, shape from `shape_signature` (-1 = dynamic)."""
    sig = details.get("shape_signature")
    dims = sig if sig is not None and len(sig) else details["shape"]
    return TensorSpec(
        name=name,
        dtype=np.dtype(details["dtype"]).name,
        shape=tuple(_dim(int(d), i) for i, d in enumerate(dims)),
        quantization=quant_params(name, details),
    )


def interface(interp: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    ins, outs = signature_io(interp)
    return tuple(spec_of(n, d) for n, d in ins), tuple(spec_of(n, d) for n, d in outs)


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def op_names(data: bytes, name: str) -> list[str]:
    """The name of every operator in every subgraph: the builtin's (`CONV_2D`), else the custom code
    (`FlexMatrixInverse`)."""
    schema = _schema()
    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if isinstance(v, int)}
    codes = [
        (custom if code == CUSTOM_CODE and custom else builtin.get(code, f"BUILTIN_{code}"))
        for code, custom in operator_codes(data, name)
    ]
    model = schema.Model.GetRootAs(data, 0)
    out = []
    for s in range(model.SubgraphsLength()):
        sub = model.Subgraphs(s)
        for i in range(sub.OperatorsLength()):
            idx = sub.Operators(i).OpcodeIndex()
            out.append(codes[idx] if 0 <= idx < len(codes) else f"opcode-{idx}")
    return out


def tensor_types(data: bytes) -> tuple[Counter, Counter]:
    """(constant values by dtype, activation tensors by dtype) over every subgraph: a constant tensor is one with
    data in its buffer."""
    schema = _schema()
    names = {v: k.lower() for k, v in vars(schema.TensorType).items() if isinstance(v, int)}
    names.update({"float32": "float32"})
    model = schema.Model.GetRootAs(data, 0)
    consts: Counter = Counter()
    activations: Counter = Counter()
    for s in range(model.SubgraphsLength()):
        sub = model.Subgraphs(s)
        for t in range(sub.TensorsLength()):
            tensor = sub.Tensors(t)
            dtype = names.get(tensor.Type(), f"type-{tensor.Type()}")
            b = tensor.Buffer()
            buf = model.Buffers(b) if 0 < b < model.BuffersLength() else None
            if buf is not None and (buf.DataLength() > 0 or buf.Size() > 0):
                consts[dtype] += int(np.prod(tensor.ShapeAsNumpy())) if tensor.ShapeLength() else 1
            else:
                activations[dtype] += 1
    return consts, activations


def precision_of(consts: Counter, activations: Counter) -> tuple[str, str]:
    q8 = {k: v for k, v in consts.items() if k in ("int8", "uint8")}
    floats = sum(v for k, v in consts.items() if k in ("float32", "float16"))
    if q8 and sum(q8.values()) >= floats:
        main = max(q8, key=q8.get)  # type: ignore[arg-type]
        kind = "dynamic range: float activations" if activations.get("float32") else f"full integer: {main} activations"
        return main, f"{sum(q8.values())} {main} weight values ({kind})"
    return float_precision(consts)


def model_facts(path: Path, root: Path, names: Names = None) -> ModelFacts:
    data = read_model(path)
    interp = open_interpreter(path, threads=1, allocate=False)  # facts need no kernels
    ins, outs = interface(interp)
    consts, activations = tensor_types(data)
    prec, why = precision_of(consts, activations)
    ops = Counter(op_names(data, path.name))
    return ModelFacts(
        format="tflite", precision=prec, precision_why=why, inputs=ins, outputs=outs, ops=ops, size_bytes=len(data)
    )


def validate(path: Path, root: Path) -> list[str]:
    """Integrity: a TFLite flatbuffer whose operator codes read, that LiteRT opens and allocates, and whose
    inputs and outputs carry usable quantization parameters."""
    data = read_model(path)
    operator_codes(data, path.name)
    interp = open_interpreter(path, threads=1)
    interface(interp)
    return []
