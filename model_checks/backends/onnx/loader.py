"""Loading an ONNX model safely: content sniffed, external data proven to stay inside the root and
inside its file, before onnx or onnxruntime reads anything."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from model_checks.core.errors import ArtifactLoadError, UnsafePathError
from model_checks.safety.paths import check_regular_file, checkout_problem, resolve_inside
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
            respell = "save the model naming its files as on disk"
            if (problem := checkout_problem(root, model_path.parent, location, path, respell)) is not None:
                raise ArtifactLoadError(f"{where}: {location} {problem}")
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
    display = display or model_path.name
    model = _checked_parse(model_path, root, display)
    if with_external and external_files(model, model_path, root, display):
        from onnx.external_data_helper import load_external_data_for_model

        load_external_data_for_model(model, os.fspath(model_path.parent))
    return model


# A model file at least this large is parsed once per process for as long as its file is unchanged (device, inode,
# size, modification and change times), and kept without its weights: the integrity checker's problems, the facts
# and the runner's interface read the graph off that one parse (onnx.checker and onnxruntime read the file
# themselves). Smaller files parse in milliseconds: each caller parses them afresh.
SHARED_PARSE_BYTES = 16 * 1024**2
_shared: dict[str, tuple[tuple, Any]] = {}  # path -> (its stat, the graph without weights); the last few
_SHARED_MAX = 4


def graph_of(model_path: Path, root: Path, display: str | None = None):  # type: ignore[no-untyped-def]
    """The ModelProto without the bytes of its weights (names, types, shapes and external-data references stay), after
    the same checks as `load_proto`: what reads a model's graph and interface and never its weights. A large file is
    parsed once while it is unchanged (SHARED_PARSE_BYTES), never held with its weights: no second full copy of them
    sits beside the checker's or the runtime's. Callers share what it returns: read it, never change it."""
    display = display or model_path.name
    key = _stat_key(model_path)
    held = _shared.get(os.fspath(model_path))
    if held is not None and key is not None and held[0] == key:
        model = held[1]
        check_regular_file(model_path, display, MAX_PROTO_BYTES)  # what a fresh parse checks, but the parse itself
        external_files(model, model_path, root, display)
        return model
    model = _without_weights(_checked_parse(model_path, root, display))
    if key is not None and key[3] >= SHARED_PARSE_BYTES:
        _shared.pop(os.fspath(model_path), None)
        while len(_shared) >= _SHARED_MAX:  # the oldest goes (a race between threads at worst parses again)
            _shared.pop(next(iter(_shared), ""), None)
        _shared[os.fspath(model_path)] = (key, model)
    return model


def _stat_key(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # check_regular_file says what is wrong with it
    return (st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _checked_parse(model_path: Path, root: Path, display: str):  # type: ignore[no-untyped-def]
    """The file checked (regular, inside its size, ONNX by its first bytes), parsed without external data, and its
    external data proven inside the root and inside its files."""
    size = check_regular_file(model_path, display, MAX_PROTO_BYTES)
    kind = sniff(model_path)
    if kind not in ("onnx", "unknown"):
        raise ArtifactLoadError(f"{display}: the file holds {kind} data, not an ONNX model (judged by its first bytes)")
    try:
        model = _parse(model_path, size)
    except Exception as e:  # protobuf raises DecodeError, RuntimeError and others on damage
        raise ArtifactLoadError(f"{display}: not a readable ONNX model ({type(e).__name__}: {str(e)[:200]})") from None
    if not model.graph.node and not model.graph.output:
        raise ArtifactLoadError(f"{display}: parsed as ONNX but holds no graph (empty or not an ONNX file)")
    external_files(model, model_path, root, display)
    return model


def _parse(model_path: Path, size: int):  # type: ignore[no-untyped-def]
    """onnx.load without external data; a large file parsed straight from a read-only mapping of it, not from a copy
    of its bytes (onnx.load reads them all into memory first: twice the file at the peak, and slower)."""
    import onnx

    if size < SHARED_PARSE_BYTES or model_path.suffix.lower() != ".onnx":  # onnx.load reads other suffixes as text
        return onnx.load(os.fspath(model_path), load_external_data=False)
    import mmap

    from google.protobuf.message import DecodeError

    model = onnx.ModelProto()
    with open(model_path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        try:
            decoded = model.ParseFromString(view)  # copies what it keeps: the mapping can go
        finally:
            view.release()
    if decoded is not None and decoded != size:  # as onnx.load says it
        raise DecodeError(f"Protobuf decoding consumed too few bytes: {decoded} out of {size}")
    return model


_DATA_FIELDS = ("raw_data", "float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")


def _without_weights(model):  # type: ignore[no-untyped-def]
    """A copy of `model` without any tensor's values (dims, data type and external-data references kept). A copy: a
    field cleared in place keeps its memory in the message's arena until the whole message goes."""
    graphs = [model.graph, *model.functions]
    for info in model.training_info:
        graphs += [info.initialization, info.algorithm]
    for graph in graphs:
        for t in _graph_tensors(graph):
            for name in _DATA_FIELDS:
                t.ClearField(name)
    return type(model).FromString(model.SerializeToString())
