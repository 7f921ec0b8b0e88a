"""How requests and answers cross the pipe between the gate (or the service) and a worker: tensors as a binary
frame, everything else pickled.

An inference's feeds and outputs (dicts of numeric arrays, or lists of such dicts) go as one message: a magic
tag, the length of a small pickled header (the op or status, and each array's name, dtype and shape), the header,
then each array's raw bytes back to back. No array is pickled, and the receiver builds its arrays over one copy of
the message. Anything else (a load, facts, an error) is pickled as before; a pickle never starts with the tag.
"""

from __future__ import annotations

import math
import pickle
import struct
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


def _unframe(message: bytes) -> tuple[tuple, Any]:
    """(head, tensors) of a frame; its arrays are writable views over one copy of the message."""
    (n,) = _LEN.unpack_from(message, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    view = memoryview(message)
    head, many, layout = pickle.loads(view[start : start + n])
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
    """Outputs as a frame; anything else (a handle, facts, an error) pickled as (status, value, peak). `peak` is
    the worker's peak resident memory in bytes while it served this request, carried by every answer."""
    dicts = _tensors(value)
    if dicts is None:
        return pickle.dumps((status, value, peak), protocol=pickle.HIGHEST_PROTOCOL)
    return _frame((status, peak), dicts, isinstance(value, list))


def decode_reply(message: bytes) -> tuple[str, Any, int]:
    if not message.startswith(MAGIC):
        answer = pickle.loads(message)
        return answer if len(answer) == 3 else (*answer, 0)
    (status, peak), value = _unframe(message)
    return status, value, peak
