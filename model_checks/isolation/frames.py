"""How requests and answers cross the pipe between the gate (or the service) and a worker: tensors as a binary
frame, everything else pickled.

An inference's feeds and outputs (dicts of numeric arrays, or lists of such dicts) go as one message: a magic
tag, the length of a small pickled header (the op or status, and each array's name, dtype and shape), the header,
then each array's raw bytes back to back. No array is pickled, and the receiver builds its arrays over one copy of
the message. Anything else (a load, facts, an error) is pickled as before; a pickle never starts with the tag.

An answer is read as untrusted data: the worker runs a stranger's model, and one that subverts its runtime holds
the worker. A pickle names callables to call while it is read, so an answer may name only the classes answers are
made of (`ANSWER_CLASSES`); anything else, and any answer that is not well formed, raises `UnreadableAnswer`
before the gate acts on it (the parent then kills the worker: `Worker._read`).
"""

from __future__ import annotations

import builtins
import io
import math
import pickle
import struct
from dataclasses import dataclass
from typing import Any

from model_checks.core.lazy import lazy

np = lazy("numpy")  # not at import: the parent starts its spare worker (Workers.start_spare) before numpy loads

MAGIC = b"MCF1"
_LEN = struct.Struct("<I")
_DTYPES: dict[str, np.dtype] = {}  # dtype strings seen in frames, parsed once
_KINDS = "biuf"  # numeric and boolean arrays travel raw; object, string and structured arrays are pickled


def _tensors(value: Any) -> list[dict] | None:
    """`value` as a list of dicts of raw-able arrays, or None when it is anything else."""
    dicts = value if isinstance(value, list) else [value]
    if not dicts or not all(isinstance(d, dict) for d in dicts):
        return None
    for d in dicts:
        for k, a in d.items():
            if not isinstance(k, str) or type(a) is not np.ndarray or a.dtype.kind not in _KINDS or a.dtype.fields:
                return None
    return dicts


@dataclass(frozen=True)
class Tagged:
    """Several sets of tensors, each with a tag of plain values (str, int, None, tuples of them) saying what it is:
    an answer to several requests whose outcomes differ (worker._Models.infer_bodies). It travels as one frame,
    the tags in its header."""

    tensors: list
    tags: list


def _frame(head: tuple, dicts: list[dict], many: bool) -> bytes:
    arrays = [np.ascontiguousarray(a) for d in dicts for a in d.values()]
    layout = [[(k, a.dtype.str, a.shape) for k, a in d.items()] for d in dicts]
    header = pickle.dumps((head, many, layout), protocol=pickle.HIGHEST_PROTOCOL)
    raw = [memoryview(a.reshape(-1)).cast("B") for a in arrays if a.size]
    return b"".join([MAGIC, _LEN.pack(len(header)), header, *raw])


def _dtype(text: str) -> np.dtype:
    dt = np.dtype(text)
    if len(_DTYPES) < 64:  # a handful in practice; a frame cannot grow the table without bound
        _DTYPES[text] = dt
    return dt


def _unframe(message: bytes, loads: Any = pickle.loads) -> tuple[tuple, Any]:
    """(head, tensors) of a frame; its arrays are writable views over one copy of the message. `loads` reads its
    header (an answer's: `_loads_answer`)."""
    (n,) = _LEN.unpack_from(message, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    view = memoryview(message)
    head, many, layout = loads(view[start : start + n])
    buf = bytearray(view[start + n :])  # the one copy: the receiver owns its arrays
    offset, dicts = 0, []
    for entries in layout:
        d = {}
        for name, dtype, shape in entries:
            dt = _DTYPES.get(dtype) or _dtype(dtype)
            count = math.prod(shape)
            if count < 0:
                raise ValueError(f"a tensor frame whose header gives {name!r} the shape {shape}")
            d[name] = np.frombuffer(buf, dt, count, offset).reshape(shape) if count else np.empty(shape, dt)
            offset += count * dt.itemsize
        dicts.append(d)
    if offset != len(buf):
        raise ValueError(f"a tensor frame of {len(buf)} bytes whose header accounts for {offset}")
    return head, dicts if many else dicts[0]


# What an answer's pickle may name, each a class whose construction only stores data (tests/isolation/test_answers.py
# holds every entry to that): the worker's own answers (a load's interface, facts, an error), what the functions
# checks run in a worker return (pool.run_isolated and run_confined: tfmot's reports, localisation, the int8
# simulation), and arrays a frame does not carry (strings, objects) with numpy's scalars. Python's exceptions too.
ANSWER_CLASSES = frozenset(
    {
        ("model_checks.manifest.model", "TensorSpec"),
        ("model_checks.manifest.model", "QuantParams"),
        ("model_checks.manifest.model", "Limit"),
        ("model_checks.backends.base", "ModelFacts"),
        ("model_checks.isolation.worker", "ErrorInfo"),
        ("model_checks.isolation.frames", "Tagged"),
        ("model_checks.tfmot.quantize", "QuantizeReport"),
        ("model_checks.tfmot.prune", "PruneReport"),
        ("model_checks.tfmot.tflite", "TFLiteReport"),
        ("model_checks.tfmot.problems", "Problem"),
        ("model_checks.localize.report", "Localization"),
        ("model_checks.localize.report", "Row"),
        ("model_checks.localize.report", "Sqnr"),
        ("model_checks.backends.onnx.int8", "Simulation"),
        ("collections", "Counter"),
        ("collections", "OrderedDict"),
        ("pathlib", "PosixPath"),
        ("pathlib", "PurePosixPath"),
        ("builtins", "complex"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytearray"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
    }
)


class UnreadableAnswer(Exception):
    """A worker's answer that is refused before anything uses it: it names something no answer holds, is not well
    formed, or is not what its operation answers (Worker._read)."""


class _Answer(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ANSWER_CLASSES or (module == "builtins" and _is_exception(name)):
            return super().find_class(module, name)
        raise UnreadableAnswer(f"it names {module}.{name}, which no answer of a worker holds")


def _is_exception(name: str) -> bool:
    cls = getattr(builtins, name, None)
    return isinstance(cls, type) and issubclass(cls, BaseException)


def _loads_answer(data: bytes | memoryview) -> Any:
    return _Answer(io.BytesIO(data)).load()


def encode_request(op: str, args: tuple) -> bytes:
    """An inference's feeds as a frame ("infer", handle, feeds); any other request pickled as (op, args)."""
    if op == "infer" and len(args) == 2 and (dicts := _tensors(args[1])) is not None:
        return _frame((op, args[0]), dicts, isinstance(args[1], list))
    return pickle.dumps((op, args), protocol=pickle.HIGHEST_PROTOCOL)


def decode_request(message: bytes) -> tuple[str, tuple]:
    if not message.startswith(MAGIC):
        return pickle.loads(message)
    (op, *rest), value = _unframe(message)
    return op, (*rest, value)


def encode_reply(status: str, value: Any, peak: int = 0) -> bytes:
    """Outputs as a frame (Tagged outputs with their tags in its header); anything else (a handle, facts, an error)
    pickled as (status, value, peak). `peak` is the worker's peak resident memory in bytes while it served this
    request, carried by every answer."""
    if isinstance(value, Tagged) and (dicts := _tensors(value.tensors)) is not None:
        return _frame((status, peak, value.tags), dicts, True)
    dicts = _tensors(value)
    if dicts is None:
        return pickle.dumps((status, value, peak), protocol=pickle.HIGHEST_PROTOCOL)
    return _frame((status, peak), dicts, isinstance(value, list))


def decode_reply(message: bytes) -> tuple[str, Any, int]:
    """(status, value, peak) of a worker's answer, read as untrusted data (see the module's docstring); anything that
    is not such an answer raises UnreadableAnswer."""
    try:
        if not message.startswith(MAGIC):
            status, value, *peak = _loads_answer(message)
            (peak,) = peak or (0,)
        else:
            (status, peak, *tags), value = _unframe(message, _loads_answer)
            if tags:
                value = Tagged(value, *tags)
    except UnreadableAnswer:
        raise
    except Exception as e:  # a truncated pickle, a frame whose header does not fit its bytes, a wrong shape
        raise UnreadableAnswer(f"it is not a well-formed answer ({type(e).__name__}: {str(e)[:200]})") from None
    if status not in ("ok", "err") or type(peak) is not int:
        raise UnreadableAnswer(
            f"it is not a well-formed answer (status {str(status)[:40]!r}, peak {type(peak).__name__})"
        )
    return status, value, peak
