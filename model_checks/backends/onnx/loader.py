"""Loading an ONNX model safely: content sniffed, external data proven to stay inside the root and
inside its file, before onnx or onnxruntime reads anything."""

from __future__ import annotations

import os
from pathlib import Path

from model_checks.core.errors import ArtifactLoadError, UnsafePathError
from model_checks.safety.paths import check_regular_file, resolve_inside
from model_checks.safety.sniff import sniff

MAX_PROTO_BYTES = 2 * 1024**3  # protobuf's own limit for a single message


def _graph_tensors(graph):  # type: ignore[no-untyped-def]
    """Every TensorProto a graph (or function) holds: initializers, sparse initializers, node attributes,
    and the same in subgraphs. onnx's own walker misses sparse tensors, which runtimes also read."""
    yield from getattr(graph, "initializer", ())
    for sparse in getattr(graph, "sparse_initializer", ()):
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield from (attr.sparse_tensor.values, attr.sparse_tensor.indices)
            for sparse in attr.sparse_tensors:
                yield from (sparse.values, sparse.indices)
            if attr.HasField("g"):
                yield from _graph_tensors(attr.g)
            for g in attr.graphs:
                yield from _graph_tensors(g)


def _external_tensors(model):  # type: ignore[no-untyped-def]
    import onnx

    graphs = [model.graph, *model.functions]
    for info in model.training_info:
        graphs += [info.initialization, info.algorithm]
    for graph in graphs:
        for t in _graph_tensors(graph):
            if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data):
                yield t


def external_files(model, model_path: Path, root: Path, display: str) -> list[Path]:  # type: ignore[no-untyped-def]
    """Check every external-data reference of `model`; return the files it names."""
    files: dict[Path, int] = {}
    for t in _external_tensors(model):
        info = {e.key: e.value for e in t.external_data}
        location = info.get("location", "")
        where = f"{display}: initializer '{t.name}' external data"
        path = resolve_inside(root, model_path.parent, location, where)
        if path not in files:
            files[path] = check_regular_file(path, where)
        size = files[path]
        try:
            offset = int(info.get("offset", 0) or 0)
            length = int(info["length"]) if "length" in info else size - offset
        except ValueError:
            raise UnsafePathError(f"{where}: offset/length are not integers") from None
        if offset < 0 or length < 0 or offset + length > size:
            raise UnsafePathError(f"{where}: bytes {offset}..{offset + length} lie outside {path.name} ({size} bytes)")
    return list(files)


def load_proto(model_path: Path, root: Path, display: str | None = None, with_external: bool = True):  # type: ignore[no-untyped-def]
    """The ModelProto, after the file, its content and its external data have been checked."""
    import onnx

    display = display or model_path.name
    check_regular_file(model_path, display, MAX_PROTO_BYTES)
    kind = sniff(model_path)
    if kind not in ("onnx", "unknown"):
        raise ArtifactLoadError(f"{display}: the file holds {kind} data, not an ONNX model (judged by its first bytes)")
    try:
        model = onnx.load(os.fspath(model_path), load_external_data=False)
    except Exception as e:  # protobuf raises DecodeError, RuntimeError and others on damage
        raise ArtifactLoadError(f"{display}: not a readable ONNX model ({type(e).__name__}: {str(e)[:200]})") from None
    if not model.graph.node and not model.graph.output:
        raise ArtifactLoadError(f"{display}: parsed as ONNX but holds no graph (empty or not an ONNX file)")
    externals = external_files(model, model_path, root, display)
    if with_external and externals:
        from onnx.external_data_helper import load_external_data_for_model

        load_external_data_for_model(model, os.fspath(model_path.parent))
    return model
