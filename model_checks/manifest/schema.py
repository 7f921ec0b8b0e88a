"""Validation of manifests against the JSON Schema shipped with the package.

The schema is the contract (`model-checks schema` prints it); this module turns jsonschema's errors into
messages that name the key path and, for an unknown key, the known key that was probably meant. There is one
source for every subtree a policy.yaml shares with metadata.yaml: the `$defs` of metadata.schema.json, which
policy.schema.json references (`metadata-1.json#/$defs/tolerance`).
"""

from __future__ import annotations

import difflib
import functools
import json
import math
from importlib import resources
from typing import Any

SCHEMAS = {"metadata": "metadata.schema.json", "policy": "policy.schema.json"}


@functools.cache
def schema(kind: str = "metadata") -> dict[str, Any]:
    """The JSON Schema for `metadata` (metadata.yaml) or `policy` (policy.yaml)."""
    text = resources.files("model_checks.schema").joinpath(SCHEMAS[kind]).read_text("utf-8")
    loaded = json.loads(text)
    if kind == "metadata":  # the formats are the frameworks' declarations (a new backend needs no edit here)
        from model_checks.backends.registry import formats

        loaded["properties"]["format"] = {"enum": list(formats())}
    return loaded


DEFS = "metadata-1.json#/$defs/"  # how the policy schema names the shared subtrees


def bundled(kind: str = "metadata") -> dict[str, Any]:
    """The schema with no reference out of it, for editors and validators that read one file: the policy schema
    carries the metadata schema's `$defs` and points at them locally."""
    if kind == "metadata":
        return schema(kind)
    text = json.dumps(schema(kind)).replace(f'"{DEFS}', '"#/$defs/')
    return {**json.loads(text), "$defs": schema("metadata")["$defs"]}


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """A subschema with its `$ref` (into the metadata schema's `$defs`) followed."""
    ref = node.get("$ref")
    if not ref:
        return node
    name = ref.split("/$defs/", 1)[1]
    return resolve(schema("metadata")["$defs"][name])


@functools.cache
def _validator(kind: str):  # type: ignore[no-untyped-def]
    import jsonschema

    s = bundled(kind)
    return jsonschema.validators.validator_for(s)(s)


@functools.cache
def _fast_validator(kind: str):  # type: ignore[no-untyped-def]
    """The schema compiled to predicates (`manifest.compiled`), or None where it uses a keyword they don't know."""
    from model_checks.manifest.compiled import Unsupported, compile_schema

    try:
        return compile_schema(bundled(kind))
    except Unsupported:
        return None


def _valid_fast(data: Any, kind: str) -> bool:
    """True only where jsonschema would find no error (the common case, a valid manifest, without jsonschema);
    False where it should look (an error, or a document the predicates cannot judge)."""
    from model_checks.manifest.compiled import Unsure

    fast = _fast_validator(kind)
    if fast is None:
        return False
    try:
        return fast(data)
    except Unsure:
        return False


def key_path(parts: Any) -> str:
    """`budgets.cpu.latency_ms.p95`, with list indices as `inputs[0].dtype`."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _subschema(root: dict[str, Any], path: list[Any]) -> dict[str, Any]:
    node = resolve(root)
    for p in path:
        if isinstance(p, int):
            node = resolve(node.get("items", {}))
        else:
            props = node.get("properties", {})
            node = resolve(props[p] if p in props else node.get("additionalProperties", {}) or {})
    return node


def _describe(err, root: dict[str, Any]) -> list[str]:  # type: ignore[no-untyped-def]
    path = list(err.absolute_path)
    where = key_path(path)
    if err.validator == "additionalProperties":
        known = sorted(_subschema(root, path).get("properties", {}))
        unknown = sorted(set(err.instance) - set(known))
        msgs = []
        for key in unknown:
            full = key_path([*path, key])
            near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"; did you mean '{near[0]}'?" if near else f"; known keys here: {', '.join(known)}"
            msgs.append(f"{full}: unknown key{hint}")
        return msgs
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return [f"{key_path([*path, missing])}: required key is missing"]
    if err.validator == "enum":
        return [f"{where}: {err.instance!r} is not one of {', '.join(map(str, err.validator_value))}"]
    if "propertyNames" in err.relative_schema_path:
        return [
            f"{where}: key {err.instance!r} is not an output name; per_output keys are the names of outputs (quote it: '{err.instance}')"
        ]
    if err.validator == "type":
        want = err.validator_value if isinstance(err.validator_value, str) else " or ".join(err.validator_value)
        return [f"{where}: expected {want}, got {type(err.instance).__name__} {err.instance!r}"]
    if err.validator == "not" and "pattern" in err.validator_value:
        from model_checks.safety.text import printable

        return [
            f"{where}: '{printable(str(err.instance))}' holds a control character, line break or invisible formatting mark; "
            "it must be printable text (the spec: no control characters or newlines), as it is printed in logs and reports"
        ]
    if err.validator == "oneOf" and err.context:
        return [
            f"{where}: {err.instance!r} is neither "
            + " nor ".join(sorted({c.message.split(" is not ")[-1] for c in err.context}))
        ]
    return [f"{where}: {err.message}"]


def validate(data: Any, kind: str = "metadata") -> list[str]:
    """All schema problems of `data`, each naming its key path; empty when valid."""
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__}, not a mapping of keys"
        return [f"the document is {what}"]
    problems: list[str] = []
    errors = (
        []
        if _valid_fast(data, kind)
        else sorted(_validator(kind).iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    )
    for err in errors:
        problems.extend(_describe(err, schema(kind)))
    numbers: list[tuple[tuple, float]] = []
    for key, value in data.items():
        if key in GATED_SECTIONS:
            _numbers(value, (key,), numbers)
    for path, value in numbers:
        if not (value >= 0) or value == math.inf:  # (NaN, infinities and negatives; the rest say nothing)
            where = key_path(path)
            if math.isnan(value) or math.isinf(value):
                problems.append(
                    f"{where}: {value} is not a finite number; every tolerance, limit and budget is a finite number "
                    ">= 0 (a tolerance of .inf passes anything, .nan fails everything); set a number, or null to turn "
                    "it off"
                )
            elif not any(p.startswith(f"{where}:") for p in problems):
                problems.append(
                    f"{where}: {value} is negative; every tolerance, limit and budget is a finite number >= 0"
                )
    return list(dict.fromkeys(problems)) if problems else problems


GATED_SECTIONS = ("tolerance", "limits", "budgets", "serving")


def _numbers(node: Any, path: tuple, out: list[tuple[tuple, float]]) -> None:
    """Add (key path, value) of every number under `node` to `out`, in document order (bools are not numbers)."""
    if isinstance(node, dict):
        for k, v in node.items():
            _numbers(v, (*path, k), out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _numbers(v, (*path, i), out)
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        out.append((path, float(node)))
