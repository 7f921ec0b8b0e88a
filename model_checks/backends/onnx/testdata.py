"""ONNX test data (`test_data_set_N/input_K.pb`): one TensorProto a file, read safely. onnx is imported inside,
and only for a file the plain reader below does not take."""

from __future__ import annotations

import sys
from pathlib import Path

from model_checks.core.errors import DataFileError
from model_checks.core.lazy import lazy
from model_checks.safety.paths import check_regular_file, stand_in_problem
from model_checks.safety.sniff import lfs_problem

np = lazy("numpy")

MAX_PB_BYTES = 1024**3
# What a tensor kept in typed fields (not raw_data) may take in memory once read: protobuf's repeated fields and
# numpy's array from them take many times the file's bytes (an empty string: 2 bytes on disk, ~70 in memory), and
# the gate's process, which reads test data, has no memory limit of its own.
MAX_DECODED_BYTES = 1024**3
# Memory per byte of file, at worst, by TensorProto.data_type: strings (8) as objects; varint fields (int32_data for
# the 8- and 16-bit types, bool and float16; int64_data, uint64_data) a byte each at least; float_data, double_data
# (and complex) fixed-size. An unknown or undeclared type is taken at the worst.
_DECODE_RATIO = {8: 40, 1: 3, 11: 3, 14: 3, 15: 3, 7: 24, 12: 24, 13: 24}
_WORST_RATIO, _VARINT32_RATIO = 40, 16


def read_tensor(path: Path, key: str, root: Path | None = None) -> tuple[str, np.ndarray]:
    """(name, values) of one TensorProto file of ONNX test data (`input_0.pb`); its values must be in the file. A
    stand-in the checkout left in its place (a Git LFS pointer; with `root`, a symbolic link written as a file) is
    said to be one."""
    size = check_regular_file(path, key, MAX_PB_BYTES, missing=DataFileError)
    data = path.read_bytes()
    plain = _plain_tensor(data)
    if plain is not None:
        return plain
    if (stand_in := stand_in_problem(root, path) if root is not None else lfs_problem(path)) is not None:
        raise DataFileError(f"{key}: {path.name} {stand_in}")
    data_type = _declared_type(data)
    ratio = _DECODE_RATIO.get(data_type, _VARINT32_RATIO if data_type is not None else _WORST_RATIO)
    if size * ratio > MAX_DECODED_BYTES:
        raise DataFileError(
            f"{key}: {path.name} keeps {size} bytes of values in typed fields rather than raw_data (data type "
            f"{data_type if data_type is not None else 'not declared'}), which could take {size * ratio / 1024**3:.1f} "
            f"GiB of memory to read, over the cap of {MAX_DECODED_BYTES / 1024**3:g} GiB; write the tensor with "
            "raw_data (onnx.numpy_helper.from_array does)"
        )
    import onnx
    from onnx import numpy_helper

    t = onnx.TensorProto()
    try:
        t.ParseFromString(data)
    except Exception as e:
        raise DataFileError(f"{key}: {path.name} is not a readable TensorProto ({type(e).__name__}: {e})") from None
    if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data):
        # onnx would read it relative to the working directory, i.e. from outside the artifacts root
        raise DataFileError(
            f"{key}: {path.name} keeps its values in an external file; test data must hold its values itself"
        )
    elements = int(np.prod([max(int(d), 0) for d in t.dims], dtype=np.float64))
    if elements > 8 * size:  # no TensorProto encoding stores more than 8 values a byte: the dims lie
        raise DataFileError(
            f"{key}: {path.name} declares dims {list(t.dims)} ({elements:.3g} values) but holds {size} bytes"
        )
    try:
        return t.name, numpy_helper.to_array(t)
    except Exception as e:
        raise DataFileError(f"{key}: {path.name} is not a readable TensorProto ({type(e).__name__}: {e})") from None


# -- the plain shape, read without onnx -------------------------------------------------------------------------
# Test data is nearly always a tensor of fixed-size numbers with its values in `raw_data` (every .pb of the onnx
# wheel's backend test data but its strings). The gate's own process reads it without importing onnx (about 50 ms,
# a sixth of row a's floor in bench/overhead.py): the protobuf wire format of a TensorProto (onnx.proto) holding
# only dims (1), data_type (2), name (8), raw_data (9) and data_location (14) set to DEFAULT, each scalar once, a
# known fixed-size type, no negative dim and exactly dims' elements of raw bytes. Anything else (another field,
# a truncated or odd encoding, external data, strings, a size that does not add up) answers None, and onnx reads
# the file as before: every refusal and message comes from there. The values are what numpy_helper.to_array
# gives (np.frombuffer of raw_data, reshaped: read-only); tests/backends/onnx/test_testdata_plain.py compares the
# two on generated and mutated files.
_RAW_TYPES = {  # TensorProto.DataType -> numpy dtype of raw_data (onnx's helper.tensor_dtype_to_np_dtype)
    1: "<f4", 2: "u1", 3: "i1", 4: "<u2", 5: "<i2", 6: "<i4", 7: "<i8", 9: "?", 10: "<f2", 11: "<f8", 12: "<u4",
    13: "<u8",
}  # fmt: skip
_MAX_DIMS = 64


class _NotPlain(Exception):
    pass


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(10):
        b = buf[i]  # IndexError past the end: not plain
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7
    raise _NotPlain


def _declared_type(buf: bytes) -> int | None:
    """A TensorProto's data_type (field 2) read off the wire format's fields before its values, without parsing
    them; None when it comes later or the encoding is not one this reads."""
    i, end = 0, len(buf)
    try:
        for _ in range(_MAX_DIMS + 8):  # dims, data_type and a name come first as onnx writes a tensor
            if i >= end:
                return None
            tag, i = _varint(buf, i)
            field, wire = tag >> 3, tag & 7
            if field == 2 and wire == 0:
                return _varint(buf, i)[0]
            if wire == 0:
                i = _varint(buf, i)[1]
            elif wire == 2:
                n, i = _varint(buf, i)
                i += n
            else:
                return None
    except (_NotPlain, IndexError):
        return None
    return None


def _plain_tensor(buf: bytes) -> tuple[str, np.ndarray] | None:
    if sys.byteorder != "little":
        return None
    try:
        return _read_plain(buf)
    except (_NotPlain, IndexError, UnicodeDecodeError, ValueError):
        return None


def _read_plain(buf: bytes) -> tuple[str, np.ndarray] | None:  # noqa: C901 - one loop over the fields
    dims: list[int] = []
    seen: set[int] = set()
    data_type, name, raw = None, "", None
    i, end = 0, len(buf)
    while i < end:
        tag, i = _varint(buf, i)
        field, wire = tag >> 3, tag & 7
        if field in seen and field != 1:
            raise _NotPlain  # a scalar field twice (the last would win): onnx reads it
        seen.add(field)
        if field == 1 and wire == 0:  # one dim
            d, i = _varint(buf, i)
            dims.append(d)
        elif field == 1 and wire == 2:  # packed dims
            n, i = _varint(buf, i)
            stop = i + n
            if stop > end:
                raise _NotPlain
            while i < stop:
                d, i = _varint(buf, i)
                dims.append(d)
            if i != stop:
                raise _NotPlain
        elif field == 2 and wire == 0:
            data_type, i = _varint(buf, i)
        elif field in (8, 9) and wire == 2:
            n, i = _varint(buf, i)
            if i + n > end:
                raise _NotPlain
            if field == 8:
                name = buf[i : i + n].decode("utf-8")
            else:
                raw = memoryview(buf)[i : i + n]
            i += n
        elif field == 14 and wire == 0:
            location, i = _varint(buf, i)
            if location != 0:
                raise _NotPlain  # EXTERNAL: onnx's reader refuses it, with its message
        else:
            raise _NotPlain
        if len(dims) > _MAX_DIMS:
            raise _NotPlain
    dtype = _RAW_TYPES.get(data_type)  # type: ignore[arg-type]
    if dtype is None or raw is None or any(d >= 1 << 63 for d in dims):  # a negative int64 dim
        raise _NotPlain
    elements = 1
    for d in dims:
        elements *= d
    values = np.frombuffer(raw, dtype=np.dtype(dtype))
    if values.nbytes != len(raw) or values.size != elements:
        raise _NotPlain
    return name, values.reshape(dims)
