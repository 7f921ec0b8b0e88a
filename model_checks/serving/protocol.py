"""The Open Inference Protocol (KServe v2, Triton, MLServer) REST JSON codec: requests checked against the
artifact's declared interface, responses and model metadata built from it. Pure numpy; no web framework.

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
MAX_BODY_BYTES = 16 * 1024**2


def datatype_of(dtype: str | np.dtype) -> str:
    """The protocol datatype of a numpy dtype (`float32` -> `FP32`)."""
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


def parse_json(body: bytes) -> Any:
    """The request body as JSON; NaN and Infinity tokens are refused, not read as floats."""
    try:
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


def _shape_of(entry: Mapping[str, Any], field: str) -> tuple[int, ...]:
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ProtocolError(
            400, f"{field}.shape: expected a list of non-negative integers, got {json.dumps(shape)[:80]}"
        )
    return tuple(shape)


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
    if flat.dtype.kind == "f":
        bad = ~np.isfinite(flat.ravel())
        if bad.any():
            raise ProtocolError(
                400,
                f"{field}.data[{int(np.argmax(bad))}]: {flat.ravel()[bad][0]} is not finite; inputs must be finite numbers",
            )
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if flat.size and (flat.min() < info.min or flat.max() > info.max):
            raise ProtocolError(400, f"{field}.data: values outside the range of {dtype.name} [{info.min}, {info.max}]")
    if dtype.kind == "f" and flat.size and np.abs(flat).max() > np.finfo(dtype).max:
        raise ProtocolError(
            400, f"{field}.data: values beyond the largest {dtype.name} ({np.finfo(dtype).max:g}) would become Inf"
        )
    return flat.reshape(shape).astype(dtype, copy=False)


def decode_request(doc: Any, interface: Sequence[TensorSpec]) -> tuple[dict[str, np.ndarray], str | None]:
    """(feeds by input name, the request id) from a parsed infer request, checked against `interface`."""
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
        want_type = DTYPE_TO_DATATYPE.get(dtype.name, dtype.name)
        if entry.get("datatype") != want_type:
            raise ProtocolError(400, f"{field}.datatype: {json.dumps(entry.get('datatype'))}, expected {want_type}")
        if (
            "parameters" in entry
            and isinstance(entry["parameters"], dict)
            and entry["parameters"].get("binary_data_size") is not None
        ):
            raise ProtocolError(
                400,
                f"{field}.parameters.binary_data_size: the binary tensor extension is not supported; send JSON data",
            )
        shape = _shape_of(entry, field)
        _check_dims(shape, spec, field, named)
        feeds[name] = _data_array(entry, shape, dtype, field)
    missing = [n for n in specs if n not in feeds]
    if missing:
        raise ProtocolError(400, f"inputs: missing {', '.join(missing)}; the model needs {', '.join(specs)}")
    return feeds, rid


def encode_request(feeds: Mapping[str, np.ndarray], request_id: str | None = None) -> dict[str, Any]:
    """An infer request for `feeds` (the inverse of `decode_request`)."""
    doc: dict[str, Any] = {"inputs": [_tensor(n, a) for n, a in feeds.items()]}
    if request_id is not None:
        doc["id"] = request_id
    return doc


def _tensor(name: str, a: np.ndarray) -> dict[str, Any]:
    a = np.asarray(a)
    return {"name": name, "shape": list(a.shape), "datatype": datatype_of(a.dtype), "data": a.ravel().tolist()}


def encode_response(
    model: str, version: str, outputs: Mapping[str, np.ndarray], request_id: str | None = None
) -> dict[str, Any]:
    """An infer response; a non-finite output is the model's failure (500), since JSON cannot carry it."""
    for name, a in outputs.items():
        a = np.asarray(a)
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise ProtocolError(
                500, f"the model produced {int((~np.isfinite(a)).sum())} non-finite value(s) in output '{name}'"
            )
    doc: dict[str, Any] = {
        "model_name": model,
        "model_version": version,
        "outputs": [_tensor(n, a) for n, a in outputs.items()],
    }
    if request_id is not None:
        doc["id"] = request_id
    return doc


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
