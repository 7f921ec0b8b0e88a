"""The Open Inference Protocol (KServe v2, Triton, MLServer) REST codec: requests checked against the artifact's
declared interface, responses and model metadata built from it. Pure numpy; no web framework.

Tensors travel as JSON lists, or as raw bytes after the JSON (the binary tensor data extension): the header
`Inference-Header-Content-Length` gives the JSON's length, each binary input says its size in
`parameters.binary_data_size`, and outputs asked for with `parameters.binary_data` (or all of them with the
request's `parameters.binary_data_output`) come back the same way. Raw bytes are little-endian, row-major, a BOOL
one byte 0 or 1.

Every refusal is a ProtocolError carrying the HTTP status and a message that names the field and what was
expected; the service sends it as the protocol's error body `{"error": "..."}`."""

from __future__ import annotations

import json
import math
from typing import Any, Mapping, Sequence

import numpy as np

from model_checks.core.errors import ProtocolError
from model_checks.manifest.model import TensorSpec

# protocol datatype <-> numpy dtype name (BYTES is not a numeric tensor: refused with a reason)
DATATYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
}
DTYPE_TO_DATATYPE = {v: k for k, v in DATATYPES.items()}
_DATATYPE_OF = {np.dtype(v): k for k, v in DATATYPES.items()}  # by dtype: a dtype's .name costs microseconds
_LARGEST = {np.dtype(t): float(np.finfo(t).max) for t in ("float16", "float32", "float64")}
MAX_BODY_BYTES = 16 * 1024**2
HEADER_LENGTH = "Inference-Header-Content-Length"  # the binary extension's header: the JSON part's length in bytes


def datatype_of(dtype: str | np.dtype) -> str:
    """The protocol datatype of a numpy dtype (`float32` -> `FP32`)."""
    known = _DATATYPE_OF.get(np.dtype(dtype))
    if known is not None:
        return known
    name = np.dtype(dtype).name
    if name not in DTYPE_TO_DATATYPE:
        raise ProtocolError(
            500, f"dtype {name} has no Open Inference Protocol datatype (known: {', '.join(DATATYPES)})"
        )
    return DTYPE_TO_DATATYPE[name]


def _refuse_constant(token: str) -> float:
    raise ProtocolError(
        400, f"request body: {token} is not a finite number; the protocol's JSON carries finite numbers only"
    )


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)  # json.loads builds one a call when given a keyword


def parse_json(body: bytes) -> Any:
    """The request body as JSON; NaN and Infinity tokens are refused, not read as floats."""
    try:
        if isinstance(body, (bytes, bytearray)):  # what json.loads does with bytes, with the decoder made once
            return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
        return json.loads(body, parse_constant=_refuse_constant)
    except ProtocolError:
        raise
    except RecursionError:  # nesting deeper than the parser's stack: the client's fault, and the service goes on
        raise ProtocolError(
            400, "request body is nested too deeply to parse (arrays and objects inside each other)"
        ) from None
    except (ValueError, UnicodeDecodeError) as e:
        where = f" at line {e.lineno} column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
        raise ProtocolError(400, f"request body is not valid JSON{where}: {getattr(e, 'msg', str(e))}") from None


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview | None]:
    """(the JSON part, the binary data after it) of a request body; the binary part is None without the header."""
    if header_length is None:
        return body, None
    if not (header_length.isascii() and header_length.isdigit()):
        raise ProtocolError(
            400, f"{HEADER_LENGTH}: expected the length of the JSON part in bytes, got {header_length[:40]!r}"
        )
    n = int(header_length)
    if n > len(body):
        raise ProtocolError(400, f"{HEADER_LENGTH}: {n} bytes of JSON, but the body holds only {len(body)} bytes")
    return body[:n], memoryview(body)[n:]


def _shape_of(entry: Mapping[str, Any], field: str) -> tuple[int, ...]:
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ProtocolError(
            400, f"{field}.shape: expected a list of non-negative integers, got {json.dumps(shape)[:80]}"
        )
    if len(shape) > MAX_RANK or any(d > MAX_DIM for d in shape):  # an empty tensor may not claim any size either
        raise ProtocolError(
            400, f"{field}.shape: at most {MAX_RANK} dims of at most {MAX_DIM} each, got {json.dumps(shape)[:80]}"
        )
    return tuple(shape)


MAX_RANK, MAX_DIM = 32, 2**31 - 1  # numpy's own limits are far above what any tensor of a request holds


def _check_dims(shape: tuple[int, ...], spec: TensorSpec, field: str, named: dict[str, tuple[int, str]]) -> None:
    """Fixed dims must match; a named dynamic dim takes one value across all inputs of the request."""
    if spec.shape is None:
        return
    if len(shape) != len(spec.shape):
        raise ProtocolError(
            400,
            f"{field}.shape: {list(shape)} has rank {len(shape)}; the model declares {_shown(spec.shape)} (rank {len(spec.shape)})",
        )
    for i, (got, want) in enumerate(zip(shape, spec.shape)):
        if isinstance(want, int) and want > 0 and got != want:
            raise ProtocolError(
                400, f"{field}.shape[{i}]: {got}, expected {want} (the model declares {_shown(spec.shape)})"
            )
        if isinstance(want, str):
            if want in named and named[want][0] != got:
                value, other = named[want]
                raise ProtocolError(
                    400,
                    f"{field}.shape[{i}]: {got}, but dim '{want}' is {value} in {other}; every use of '{want}' must be the same size",
                )
            named.setdefault(want, (got, field))


def _shown(shape: Sequence[int | str]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _data_array(entry: Mapping[str, Any], shape: tuple[int, ...], dtype: np.dtype, field: str) -> np.ndarray:
    data = entry.get("data")
    if not isinstance(data, list):
        raise ProtocolError(
            400, f"{field}.data: expected a list of numbers (flattened, row-major), got {type(data).__name__}"
        )
    try:
        flat = np.asarray(data, dtype=np.float64 if dtype.kind == "f" else None)
    except OverflowError:  # an integer past float64's range (10**400)
        raise ProtocolError(400, f"{field}.data: a number beyond the range of float64; inputs must be finite") from None
    except (ValueError, TypeError):
        raise ProtocolError(
            400, f"{field}.data: not a regular list of numbers (ragged nesting or non-numeric values)"
        ) from None
    if flat.dtype.kind not in "biuf":
        raise ProtocolError(
            400,
            f"{field}.data: expected numbers for datatype {DTYPE_TO_DATATYPE[dtype.name]}, got {flat.dtype.kind!r} values",
        )
    if dtype.kind in "iu" and flat.dtype.kind == "f":
        raise ProtocolError(
            400, f"{field}.data: datatype {DTYPE_TO_DATATYPE[dtype.name]} needs integers, got fractional numbers"
        )
    want = math.prod(shape)
    if flat.size != want:
        raise ProtocolError(400, f"{field}.data: {flat.size} value(s), but shape {list(shape)} holds {want}")
    peak = float(np.abs(flat).max()) if flat.size and (flat.dtype.kind == "f" or dtype.kind == "f") else 0.0
    if flat.dtype.kind == "f" and not math.isfinite(peak):  # a NaN or an infinity somewhere: say where
        bad = ~np.isfinite(flat.ravel())
        raise ProtocolError(
            400,
            f"{field}.data[{int(np.argmax(bad))}]: {flat.ravel()[bad][0]} is not finite; inputs must be finite numbers",
        )
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if flat.size and (flat.min() < info.min or flat.max() > info.max):
            raise ProtocolError(400, f"{field}.data: values outside the range of {dtype.name} [{info.min}, {info.max}]")
    if dtype.kind == "f" and peak > _LARGEST[dtype]:
        raise ProtocolError(
            400, f"{field}.data: values beyond the largest {dtype.name} ({_LARGEST[dtype]:g}) would become Inf"
        )
    return flat.reshape(shape).astype(dtype, copy=False)


def _binary_array(
    entry: Mapping[str, Any],
    size: Any,
    raw: memoryview | None,
    at: int,
    shape: tuple[int, ...],
    dtype: np.dtype,
    field: str,
) -> np.ndarray:
    """The input's `size` bytes of raw data from `at` in `raw`, checked as `_data_array` checks a JSON list."""
    where = f"{field}.parameters.binary_data_size"
    if raw is None:
        raise ProtocolError(
            400, f"{where}: binary data needs the {HEADER_LENGTH} header (the length of the JSON part of the body)"
        )
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ProtocolError(400, f"{where}: expected a non-negative integer (bytes), got {json.dumps(size)[:40]}")
    if "data" in entry:
        raise ProtocolError(400, f"{field}: both data and parameters.binary_data_size; send the tensor one way")
    count = math.prod(shape)
    if size != count * dtype.itemsize:
        raise ProtocolError(
            400,
            f"{where}: {size} bytes, but shape {list(shape)} of {DTYPE_TO_DATATYPE[dtype.name]} holds "
            f"{count * dtype.itemsize} bytes ({count} x {dtype.itemsize})",
        )
    if at + size > len(raw):
        raise ProtocolError(
            400,
            f"{where}: {size} bytes from byte {at} of the binary data, but the body holds {len(raw)} bytes after its "
            f"JSON part ({HEADER_LENGTH}); the body is truncated or a size is wrong",
        )
    if dtype.kind == "b":
        octets = np.frombuffer(raw, np.uint8, count, at)
        if count and octets.max() > 1:
            i = int(np.argmax(octets > 1))
            raise ProtocolError(400, f"{field}: binary BOOL value [{i}] is the byte {octets[i]}; expected 0 or 1")
        return octets.astype(np.bool_).reshape(shape)
    flat = np.frombuffer(raw, dtype.newbyteorder("<"), count, at).astype(dtype)  # a copy, in native byte order
    if dtype.kind == "f" and count:
        bad = ~np.isfinite(flat)
        if bad.any():
            i = int(np.argmax(bad))
            raise ProtocolError(
                400, f"{field}: binary value [{i}] is {flat[i]}, not finite; inputs must be finite numbers"
            )
    return flat.reshape(shape)


def decode_request(
    doc: Any, interface: Sequence[TensorSpec], raw: memoryview | None = None
) -> tuple[dict[str, np.ndarray], str | None]:
    """(feeds by input name, the request id) from a parsed infer request, checked against `interface`; `raw` is the
    body's binary data after its JSON part (see `split_body`), where inputs with a binary_data_size are read from."""
    if not isinstance(doc, dict):
        raise ProtocolError(400, f"request body: expected a JSON object with 'inputs', got {type(doc).__name__}")
    unknown = sorted(set(doc) - {"id", "parameters", "inputs", "outputs"})
    if unknown:
        raise ProtocolError(
            400, f"request body: unknown field(s) {', '.join(unknown)}; expected id, parameters, inputs, outputs"
        )
    rid = doc.get("id")
    if rid is not None and not isinstance(rid, str):
        raise ProtocolError(400, f"id: expected a string, got {type(rid).__name__}")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError(400, "inputs: expected a non-empty list of tensors {name, shape, datatype, data}")
    specs = {s.name: s for s in interface}
    feeds: dict[str, np.ndarray] = {}
    named: dict[str, tuple[int, str]] = {}
    at = 0  # where the next binary input starts in `raw`
    for i, entry in enumerate(inputs):
        field = f"inputs[{i}]"
        if not isinstance(entry, dict):
            raise ProtocolError(
                400, f"{field}: expected an object {{name, shape, datatype, data}}, got {type(entry).__name__}"
            )
        name = entry.get("name")
        if not isinstance(name, str):
            raise ProtocolError(
                400, f"{field}.name: expected a string naming one of the model's inputs ({', '.join(specs)})"
            )
        field = f"inputs[{i}] '{name}'"
        if name not in specs:
            raise ProtocolError(400, f"{field}: unexpected input; the model's inputs are {', '.join(specs)}")
        if name in feeds:
            raise ProtocolError(400, f"{field}: given twice")
        spec = specs[name]
        dtype = np.dtype(spec.dtype or "float32")
        want_type = _DATATYPE_OF.get(dtype) or dtype.name
        if entry.get("datatype") != want_type:
            raise ProtocolError(400, f"{field}.datatype: {json.dumps(entry.get('datatype'))}, expected {want_type}")
        shape = _shape_of(entry, field)
        _check_dims(shape, spec, field, named)
        params = entry.get("parameters")
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        if size is None:
            feeds[name] = _data_array(entry, shape, dtype, field)
        else:
            feeds[name] = _binary_array(entry, size, raw, at, shape, dtype, field)
            at += size
    missing = [n for n in specs if n not in feeds]
    if missing:
        raise ProtocolError(400, f"inputs: missing {', '.join(missing)}; the model needs {', '.join(specs)}")
    if raw is not None and at != len(raw):
        raise ProtocolError(
            400,
            f"request body: {len(raw)} bytes follow the JSON part ({HEADER_LENGTH}), but the inputs' "
            f"binary_data_size add up to {at}",
        )
    return feeds, rid


def binary_outputs(doc: Mapping[str, Any], names: Sequence[str]) -> frozenset[str]:
    """The outputs a request asks to get back as binary data: all with `parameters.binary_data_output`, each named
    in `outputs` by its `parameters.binary_data` (which wins). An output it names must be one of `names`."""
    params = doc.get("parameters")
    everything = params.get("binary_data_output", False) if isinstance(params, dict) else False
    if not isinstance(everything, bool):
        raise ProtocolError(
            400, f"parameters.binary_data_output: expected true or false, got {json.dumps(everything)[:40]}"
        )
    chosen = set(names) if everything else set()
    asked = doc.get("outputs")
    if asked is None:
        return frozenset(chosen)
    if not isinstance(asked, list):
        raise ProtocolError(400, f"outputs: expected a list of {{name, parameters}}, got {type(asked).__name__}")
    for i, entry in enumerate(asked):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name not in names:
            raise ProtocolError(
                400, f"outputs[{i}]: expected an object naming one of the model's outputs ({', '.join(names)})"
            )
        params = entry.get("parameters")
        binary = params.get("binary_data") if isinstance(params, dict) else None
        if binary is None:
            continue
        if not isinstance(binary, bool):
            raise ProtocolError(
                400,
                f"outputs[{i}] '{name}'.parameters.binary_data: expected true or false, got {json.dumps(binary)[:40]}",
            )
        (chosen.add if binary else chosen.discard)(name)
    return frozenset(chosen)


def read_request(
    body: bytes, header_length: str | None, interface: Sequence[TensorSpec], outputs: Sequence[str]
) -> tuple[dict[str, np.ndarray], str | None, frozenset[str]]:
    """(feeds, request id, outputs wanted as binary data) of an infer request's body and its
    Inference-Header-Content-Length (None without), checked against the model's `interface` and output names."""
    text, raw = split_body(body, header_length)
    doc = parse_json(text)
    feeds, rid = decode_request(doc, interface, raw)
    return feeds, rid, binary_outputs(doc, outputs)


def encode_request(feeds: Mapping[str, np.ndarray], request_id: str | None = None) -> dict[str, Any]:
    """An infer request for `feeds` (the inverse of `decode_request`)."""
    doc: dict[str, Any] = {"inputs": [_tensor(n, a) for n, a in feeds.items()]}
    if request_id is not None:
        doc["id"] = request_id
    return doc


def encode_binary_request(
    feeds: Mapping[str, np.ndarray], binary_output: bool = True, request_id: str | None = None
) -> tuple[bytes, int]:
    """(body, length of its JSON part) of an infer request whose inputs are binary data, asking for binary outputs
    with `binary_output`: send the length as the `Inference-Header-Content-Length` header."""
    arrays = {n: np.asarray(a) for n, a in feeds.items()}
    doc: dict[str, Any] = {"inputs": [_tensor(n, a, binary=True) for n, a in arrays.items()]}
    if binary_output:
        doc["parameters"] = {"binary_data_output": True}
    if request_id is not None:
        doc["id"] = request_id
    head = json.dumps(doc, separators=(",", ":")).encode()
    return head + b"".join(_raw(a) for a in arrays.values()), len(head)


def _raw(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, a.dtype.newbyteorder("<")).tobytes()


def _tensor(name: str, a: np.ndarray, binary: bool = False) -> dict[str, Any]:
    a = np.asarray(a)
    t: dict[str, Any] = {"name": name, "shape": list(a.shape), "datatype": datatype_of(a.dtype)}
    if binary:
        t["parameters"] = {"binary_data_size": a.size * a.dtype.itemsize}
    else:
        t["data"] = a.ravel().tolist()
    return t


def encode_response(
    model: str,
    version: str,
    outputs: Mapping[str, np.ndarray],
    request_id: str | None = None,
    binary: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """An infer response; a non-finite output is the model's failure (500), since JSON cannot carry it (nor does a
    binary output: the same answer either way). The outputs in `binary` say their size, their bytes are
    `binary_body`'s to append."""
    for name, a in outputs.items():
        a = np.asarray(a)
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise ProtocolError(
                500, f"the model produced {int((~np.isfinite(a)).sum())} non-finite value(s) in output '{name}'"
            )
    doc: dict[str, Any] = {
        "model_name": model,
        "model_version": version,
        "outputs": [_tensor(n, a, n in binary) for n, a in outputs.items()],
    }
    if request_id is not None:
        doc["id"] = request_id
    return doc


def binary_body(doc: Mapping[str, Any], outputs: Mapping[str, np.ndarray], binary: frozenset[str]) -> tuple[bytes, int]:
    """(body, length of its JSON part) of a response with binary outputs: `doc` as JSON, then each binary output's
    bytes in the order of `doc`'s outputs."""
    head = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
    return head + b"".join(_raw(np.asarray(outputs[t["name"]])) for t in doc["outputs"] if t["name"] in binary), len(
        head
    )


def decode_binary_response(body: bytes, header_length: int) -> dict[str, np.ndarray]:
    """Outputs by name from an infer response with binary outputs (a ProtocolError when it is not one)."""
    doc, raw = parse_json(body[:header_length]), memoryview(body)[header_length:]
    if not isinstance(doc, dict) or not isinstance(doc.get("outputs"), list):
        raise ProtocolError(502, f"not an infer response: {json.dumps(doc)[:200]}")
    at, out = 0, {}
    for i, t in enumerate(doc["outputs"]):
        size = t.get("parameters", {}).get("binary_data_size") if isinstance(t, dict) else None
        if size is None:
            out.update(decode_response({"outputs": [t]}))
            continue
        try:
            dtype = np.dtype(DATATYPES[t["datatype"]]).newbyteorder("<")
            out[t["name"]] = (
                np.frombuffer(raw, dtype, size // dtype.itemsize, at)
                .reshape(t["shape"])
                .astype(dtype.newbyteorder("="))
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ProtocolError(
                502, f"outputs[{i}] of the response is not a tensor ({type(e).__name__}: {e})"
            ) from None
        at += size
    return out


def decode_response(doc: Any) -> dict[str, np.ndarray]:
    """Outputs by name from an infer response (a ProtocolError when it is not one)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("outputs"), list):
        raise ProtocolError(502, f"not an infer response: {json.dumps(doc)[:200]}")
    out = {}
    for i, t in enumerate(doc["outputs"]):
        try:
            out[t["name"]] = np.asarray(t["data"], dtype=DATATYPES[t["datatype"]]).reshape(t["shape"])
        except (KeyError, TypeError, ValueError) as e:
            raise ProtocolError(
                502, f"outputs[{i}] of the response is not a tensor ({type(e).__name__}: {e})"
            ) from None
    return out


def _meta_tensor(spec: TensorSpec) -> dict[str, Any]:
    shape = [d if isinstance(d, int) and d > 0 else -1 for d in spec.shape or ()]
    return {"name": spec.name, "datatype": datatype_of(spec.dtype or "float32"), "shape": shape}


def model_metadata(
    name: str, version: str, platform: str, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]
) -> dict[str, Any]:
    """`GET /v2/models/{name}`: dynamic dims are -1, as the protocol has it."""
    return {
        "name": name,
        "versions": [version],
        "platform": platform,
        "inputs": [_meta_tensor(s) for s in inputs],
        "outputs": [_meta_tensor(s) for s in outputs],
    }
