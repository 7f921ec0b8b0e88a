"""Facts read off a TorchScript module without running it: its forward schema, parameter dtypes, ops."""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from model_checks.backends.base import ModelFacts, Names
from model_checks.backends.precision import float_precision
from model_checks.backends.torchscript.loader import check_archive, load_module, names
from model_checks.manifest.model import TensorSpec


def _count_returns(schema: Any) -> int:
    ret = schema.returns[0].type if schema.returns else None
    elements = getattr(ret, "elements", None)
    return len(elements()) if callable(elements) else 1


def interface(module: Any, declared: Names = None) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Inputs from forward's arguments (self left out), outputs from its return type; named as `declared` says
    (the manifest's inputs and outputs, passed in by the caller), else by position."""
    schema = module.forward.schema
    args = [a for a in schema.arguments if a.name != "self"]
    decl_in, decl_out = declared or (None, None)
    decl_in, decl_out = (list(decl_in) if decl_in else None), (list(decl_out) if decl_out else None)
    in_names = names(decl_in, len(args), "input")
    out_names = names(decl_out, _count_returns(schema), "output")
    return tuple(TensorSpec(name=n) for n in in_names), tuple(TensorSpec(name=n) for n in out_names)


def ops_of(module: Any) -> Counter:
    """aten/quantized/custom ops of the inlined graph (prim:: bookkeeping left out)."""
    return Counter(n.kind() for n in module.inlined_graph.nodes() if not n.kind().startswith("prim::"))


def precision_of(module: Any, ops: Counter) -> tuple[str, str]:
    """(precision, why) from parameter and buffer dtypes; quantized ops mean int8/uint8."""
    elems: Counter = Counter()
    for t in [*module.parameters(), *module.buffers()]:
        elems[str(t.dtype).replace("torch.", "")] += t.numel()
    quant = sorted(op for op in ops if op.startswith("quantized::") or "quantize_per" in op)
    q8 = {k: v for k, v in elems.items() if k in ("qint8", "quint8", "int8", "uint8")}
    if quant or q8:
        kind = "uint8" if "quint8" in q8 and q8["quint8"] >= q8.get("qint8", 0) else "int8"
        return kind, f"quantized ops ({', '.join(quant[:4]) or 'none'}) and {sum(q8.values())} 8-bit parameter values"
    return float_precision(elems, "parameter")


def model_facts(path: Path, root: Path, names: Names = None) -> ModelFacts:
    module = load_module(path)
    ins, outs = interface(module, names)
    ops = ops_of(module)
    prec, why = precision_of(module, ops)
    return ModelFacts(
        format="torchscript",
        precision=prec,
        precision_why=why,
        inputs=ins,
        outputs=outs,
        ops=ops,
        size_bytes=path.stat().st_size,
    )


def validate(path: Path, root: Path) -> list[str]:
    """Integrity problems: the zip's CRCs, then torch.jit.load and a forward schema to read."""
    check_archive(path)
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
    if bad:
        return [f"zip: member {bad} fails its CRC check (the archive is damaged)"]
    module = load_module(path)
    if not hasattr(module, "forward"):
        return ["the archive holds no forward method to run"]
    return []
