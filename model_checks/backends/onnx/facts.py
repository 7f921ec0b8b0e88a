"""Facts read off an ONNX graph without running it: opset, precision, ops, interface, dead nodes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from model_checks.backends.base import ModelFacts, Names
from model_checks.backends.precision import FLOAT_NAMES, float_precision
from model_checks.core.errors import runtime_error_text
from model_checks.manifest.model import TensorSpec

ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int16)": np.int16,
    "tensor(uint16)": np.uint16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}

# TensorProto.DataType -> numpy dtype name (bfloat16 has no numpy dtype; its name is enough here)
ONNX_DTYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
    16: "bfloat16",
}

QUANT_OPS = {
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "MatMulInteger",
    "ConvInteger",
    "QLinearAdd",
    "QLinearMul",
    "DynamicQuantizeMatMul",
    "QGemm",
    "QLinearSigmoid",
    "QLinearLeakyRelu",
    "QLinearConcat",
    "QLinearAveragePool",
    "QLinearGlobalAveragePool",
}


def elem_name(elem_type: int) -> str:
    import onnx

    if elem_type in ONNX_DTYPES:
        return ONNX_DTYPES[elem_type]
    name = (
        onnx.TensorProto.DataType.Name(elem_type)
        if elem_type in onnx.TensorProto.DataType.values()
        else f"type-{elem_type}"
    )
    return name.lower()


def type_name(tp) -> str:  # type: ignore[no-untyped-def]
    """The name of any ONNX type: `float32`, `string`, `seq(map(int64,float32))`, `optional(int64)`."""
    kind = tp.WhichOneof("value")
    if kind == "tensor_type":
        return elem_name(tp.tensor_type.elem_type)
    if kind == "sparse_tensor_type":
        return f"sparse({elem_name(tp.sparse_tensor_type.elem_type)})"
    if kind == "sequence_type":
        return f"seq({type_name(tp.sequence_type.elem_type)})"
    if kind == "map_type":
        return f"map({elem_name(tp.map_type.key_type)},{type_name(tp.map_type.value_type)})"
    if kind == "optional_type":
        return f"optional({type_name(tp.optional_type.elem_type)})"
    return "undefined"


def value_spec(v, index_range: tuple[int, int] | None = None) -> TensorSpec:  # type: ignore[no-untyped-def]
    """A graph input/output as a TensorSpec; a dynamic dim is its dim_param, or '?' when unnamed."""
    t = v.type.tensor_type
    shape = None
    if v.type.WhichOneof("value") == "tensor_type" and t.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim)
    return TensorSpec(name=v.name, dtype=type_name(v.type), shape=shape, range=index_range)


# Ops that pass an index tensor through unchanged in value (only its shape or integer type changes).
_VALUE_PRESERVING = {"Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Identity", "Expand"}


def index_ranges(graph) -> dict[str, tuple[int, int]]:  # type: ignore[no-untyped-def]
    """Integer inputs whose valid values the graph proves: an input that indexes the rows of an initializer
    (an embedding table) through Gather, directly or through value-preserving ops, gets [0, rows - 1].
    An input with several such uses gets the narrowest range; any other use proves nothing more."""
    rows = {i.name: int(i.dims[0]) for i in graph.initializer if len(i.dims) >= 1}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for k, name in enumerate(n.input):
            consumers.setdefault(name, []).append((n, k))
    out: dict[str, tuple[int, int]] = {}
    for v in graph.input:
        if v.name in rows or v.type.tensor_type.elem_type not in (2, 3, 4, 5, 6, 7, 12, 13):
            continue
        seen, todo, found = set(), [v.name], []
        while todo:
            name = todo.pop()
            for node, k in consumers.get(name, ()):
                if (
                    node.op_type == "Gather"
                    and k == 1
                    and node.input[0] in rows
                    and not any(a.name == "axis" and a.i != 0 for a in node.attribute)
                ):
                    found.append(rows[node.input[0]])
                elif node.op_type in _VALUE_PRESERVING and k == 0:
                    todo += [o for o in node.output if o not in seen]
                    seen.update(node.output)
        if found and min(found) > 0:
            out[v.name] = (0, min(found) - 1)
    return out


def input_specs(graph) -> tuple[TensorSpec, ...]:  # type: ignore[no-untyped-def]
    """The graph's real inputs (initializers excluded), each with the index range the graph proves."""
    inits = {i.name for i in graph.initializer}
    ranges = index_ranges(graph)
    return tuple(value_spec(v, ranges.get(v.name)) for v in graph.input if v.name not in inits)


def _all_nodes(graph):  # type: ignore[no-untyped-def]
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g and attr.g.node:
                yield from _all_nodes(attr.g)
            for g in attr.graphs:
                yield from _all_nodes(g)


def precision_of(model) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(precision, why) from initializer dtypes and quantization nodes."""
    ops = Counter(n.op_type for n in _all_nodes(model.graph))
    elems: Counter = Counter()
    for init in model.graph.initializer:
        n = int(np.prod(init.dims)) if init.dims else 1
        elems[ONNX_DTYPES.get(init.data_type, "other")] += n
    for node in _all_nodes(model.graph):
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.t is not None:
                    elems[ONNX_DTYPES.get(a.t.data_type, "other")] += int(np.prod(a.t.dims)) if a.t.dims else 1
    quant = sorted(op for op in ops if op in QUANT_OPS)
    if quant:
        q8 = {k: elems[k] for k in ("int8", "uint8") if elems[k]}
        if not q8:
            return "mixed", f"quantization nodes ({', '.join(quant)}) but no 8-bit weights"
        kind = max(q8, key=q8.get)  # type: ignore[arg-type]
        return kind, f"quantization nodes ({', '.join(quant)}) and {q8[kind]} {kind} weight values"
    if not sum(v for k, v in elems.items() if k in FLOAT_NAMES):
        io = [ONNX_DTYPES.get(v.type.tensor_type.elem_type) for v in model.graph.input]
        name = next((FLOAT_NAMES[d] for d in io if d in FLOAT_NAMES), "fp32")
        return name, "no float weights; judged by the input dtype"
    return float_precision(elems, "float weight")


def facts(model, size_bytes: int = 0, files: tuple[Path, ...] = ()) -> ModelFacts:  # type: ignore[no-untyped-def]
    g = model.graph
    opsets = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    ops = Counter(n.op_type for n in _all_nodes(g))
    inits = {i.name for i in g.initializer}
    consts = inits | {o for n in g.node if n.op_type == "Constant" for o in n.output}
    consumed = {i for n in _all_nodes(g) for i in n.input} | {o.name for o in g.output}
    dead = tuple(
        n.name or f"{n.op_type}#{i}"
        for i, n in enumerate(g.node)
        if n.output and not any(o in consumed for o in n.output)
    )
    bn = tuple(n.name or "BatchNormalization" for n in g.node if n.op_type == "BatchNormalization")
    conv_out = {n.output[0] for n in g.node if n.op_type == "Conv"}
    adds = tuple(
        n.name or "Add"
        for n in g.node
        if n.op_type == "Add"
        and len(n.input) == 2
        and ((n.input[0] in conv_out and n.input[1] in consts) or (n.input[1] in conv_out and n.input[0] in consts))
    )
    prec, why = precision_of(model)
    return ModelFacts(
        format="onnx",
        precision=prec,
        precision_why=why,
        inputs=input_specs(g),
        outputs=tuple(value_spec(v) for v in g.output),
        ops=ops,
        size_bytes=size_bytes,
        opset=opsets.get("ai.onnx"),
        opsets=opsets,
        # What the graph shows of an optimization: the nodes that should not be there after it.
        optimization_leftovers={
            "fuse_bn_into_conv": ("BatchNormalization nodes remain", bn),
            "eliminate_deadend": ("nodes whose outputs nothing uses remain", dead),
            "fuse_add_bias_into_conv": ("Add of a constant straight after a Conv remains", adds),
        },
        files=files,
    )


def model_facts(path: Path, root: Path, names: Names = None) -> ModelFacts:
    """Facts of the ONNX model at `path` (external data is checked, not loaded), read off its graph without weights."""
    from model_checks.backends.onnx.loader import graph_of

    model = graph_of(path, root)
    files = tuple(files_of(model, path, root))
    return facts(model, sum(p.stat().st_size for p in files), files)


def validate(path: Path, root: Path) -> list[str]:
    """Integrity problems: onnx.checker's full check with shape inference, on the file's path (it reads the model and
    checks its external data itself: a model over 2 GB with external data is checked without being loaded here)."""
    import onnx

    from model_checks.backends.onnx.loader import graph_of

    # content sniffed and external data proven safe first; the graph without its weights (facts and the runner read
    # the same parse of a large file), so no copy of them is held while the checker reads its own
    problems = output_problems(graph_of(path, root).graph)
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as e:  # ValidationError, InferenceError, and protobuf errors on damage
        return problems + [f"onnx.checker (full check, shape inference): {runtime_error_text(e)}"]
    return problems


def output_problems(graph) -> list[str]:  # type: ignore[no-untyped-def]
    """What onnx.checker lets through: a graph with no outputs computes nothing to check; two outputs of
    one name make a comparison by name pick one of them."""
    names = [o.name for o in graph.output]
    if not names:
        return ["the graph declares no outputs: it computes nothing that could be checked"]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        return [
            f"output names are not unique: {', '.join(repr(n) for n in dupes)} appear more than once among {len(names)} outputs; outputs are matched by name"
        ]
    return []


def optimizer_passes() -> tuple[str, ...]:
    """The passes onnxoptimizer knows, which a manifest's `optimization:` may name; none when it is not installed.
    Optional in a backend's facts module: a format without its own optimizer has none."""
    try:
        import onnxoptimizer
    except ImportError:
        return ()
    return tuple(onnxoptimizer.get_available_passes())


def model_files(path: Path, root: Path) -> list[Path]:
    """The model file and its external data files, each proven inside the root (what `sha256` covers). Optional
    in a backend's facts module: a format kept in one file has only that."""
    from model_checks.backends.onnx.loader import graph_of

    return files_of(graph_of(path, root), path, root)


def files_of(model, path: Path, root: Path) -> list[Path]:  # type: ignore[no-untyped-def]
    """`model_files` of a graph already read (from `graph_of`)."""
    from model_checks.backends.onnx.loader import external_files

    return [path, *external_files(model, path, root, path.name)]
