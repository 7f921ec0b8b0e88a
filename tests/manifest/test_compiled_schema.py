"""The compiled schema (`manifest.compiled`) agrees with jsonschema on which documents are valid, both ways, on
generated near-valid and broken manifests and policies; a schema it cannot compile, or a document it cannot
judge, goes to jsonschema; and a bad manifest's messages are jsonschema's as before."""

from __future__ import annotations

import functools
import importlib
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from model_checks.core.errors import ManifestError
from model_checks.manifest import parse_manifest
from model_checks.manifest.compiled import Unsupported, Unsure, compile_schema, equal
from model_checks.manifest.yamlsafe import load_yaml_file

S = importlib.import_module("model_checks.manifest.schema")  # the package exports a function of that name
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [load_yaml_file(p) for p in sorted((REPO / "artifacts").glob("**/metadata.yaml"))]
MIN = {"model_name": "cnn", "version": "1.0", "file": "model.onnx"}

# Values a manifest could hold by mistake: every JSON type, the edges of numbers, text that patterns refuse.
TEXTS = ["", "a", "model.onnx", "fp32", "x\ny", "\u200bcnn", "1.0", "-a", "a" * 64, "0" * 64, "cpu", "onnxruntime"]
NUMBERS = [0, 1, -1, 2, 13, 0.0, 1.0, -0.5, 1e-3, 2.5, 1e300, math.inf, -math.inf, math.nan]
scalars = st.one_of(
    st.sampled_from(TEXTS),
    st.text(max_size=4),
    st.sampled_from(NUMBERS),
    st.integers(-3, 30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from([*TEXTS, "name", "p50", "min"]), inner, max_size=3)
    ),
    max_leaves=6,
)


def _resolve(root: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def from_schema(root: dict, node, depth: int = 0) -> st.SearchStrategy:
    """Documents shaped by `node`, mostly near its rules and now and then anything at all (so both valid and
    invalid ones come out, each invalid in a few places)."""
    node = _resolve(root, node)
    if not isinstance(node, dict) or depth > 6:
        return junk
    options = []
    if "enum" in node:
        options.append(st.sampled_from(node["enum"]))
    if "const" in node:
        options.append(st.just(node["const"]))
    if "oneOf" in node:
        options += [from_schema(root, n, depth + 1) for n in node["oneOf"]]
    types = node.get("type", [])
    types = types if isinstance(types, list) else [types]
    if "object" in types or "properties" in node:
        props = node.get("properties", {})
        required = set(node.get("required", ()))
        extra = node.get("additionalProperties", True)
        base = st.fixed_dictionaries(
            {k: from_schema(root, props[k], depth + 1) for k in sorted(required) if k in props},
            optional={k: from_schema(root, v, depth + 1) for k, v in props.items() if k not in required},
        )
        if isinstance(extra, dict):
            more = st.dictionaries(
                st.sampled_from(["a", "out", "cpu", "1"]), from_schema(root, extra, depth + 1), max_size=2
            )
        else:
            more = st.dictionaries(st.sampled_from(["tolerence", "zzz"]), junk, max_size=1)
        drop = st.sampled_from([*[None] * 8, *sorted(required)])  # now and then a required key goes missing
        options.append(
            st.tuples(base, st.integers(0, 9).flatmap(lambda i: more if i == 0 else st.just({})), drop).map(
                lambda t: {k: v for k, v in {**t[0], **t[1]}.items() if k != t[2]}
            )
        )
    if "array" in types:
        options.append(st.lists(from_schema(root, node.get("items", True), depth + 1), max_size=4))
    if "string" in types:
        if "pattern" in node:
            options.append(st.from_regex(node["pattern"], fullmatch=True).filter(lambda t: len(t) < 80))
        else:
            least = node.get("minLength", 0)
            options.append(
                st.one_of(st.sampled_from([t for t in TEXTS if len(t) >= least]), st.text(min_size=least, max_size=6))
            )
    if "number" in types or "integer" in types:
        low = node.get("minimum", node.get("exclusiveMinimum", 0))
        high = node.get("maximum", node.get("exclusiveMaximum", low + 100))
        options.append(st.sampled_from([low + (high - low) / 2, (low + high) // 2 if high - low > 1 else low + 0.5]))
        edges = [e for k in BOUNDS if k in node for e in _around(node[k])]
        options += [st.sampled_from(NUMBERS), *([st.sampled_from(edges)] * 2 if edges else [])]
    if "boolean" in types:
        options.append(st.booleans())
    if "null" in types:
        options.append(st.none())
    if not options:
        return junk
    near = st.one_of(*options)
    # mostly near the rules, now and then anything: both answers come up, each invalid document wrong in few places
    return st.integers(0, 9).flatmap(lambda i: junk if i == 0 else near)


def agree(kind: str, document) -> None:
    fast = S._fast_validator(kind)
    assert fast is not None, f"the shipped {kind} schema no longer compiles; manifest.compiled needs its new keyword"
    slow = not list(S._validator(kind).iter_errors(document))
    try:
        said = fast(document)
    except Unsure:
        event("unsure")
        return
    event("valid" if slow else "invalid")
    assert said == slow, (kind, document)


@functools.cache
def documents(kind: str) -> st.SearchStrategy:
    root = S.bundled(kind)
    return from_schema(root, root)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_agrees_with_jsonschema_on_generated_manifests(data):
    agree("metadata", data.draw(documents("metadata")))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_agrees_with_jsonschema_on_generated_policies(data):
    agree("policy", data.draw(documents("policy")))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_agrees_with_jsonschema_on_example_manifests_with_one_value_changed(data):
    """Each example manifest with one value somewhere in it replaced, a key dropped or one added."""
    doc = data.draw(st.sampled_from(EXAMPLES))
    doc = _copy(doc)
    parent, key = data.draw(st.sampled_from(list(_slots(doc))))
    how = data.draw(st.sampled_from(["replace", "edge", "drop", "add"]))
    if how == "edge" and isinstance(parent[key], (int, float)):  # a number at, just inside or just past a bound
        parent[key] = data.draw(st.sampled_from(EDGES))
    elif how in ("replace", "edge") or not isinstance(parent, dict):
        parent[key] = data.draw(junk)
    elif how == "drop":
        del parent[key]
    else:
        parent[data.draw(st.sampled_from(["tolerence", "extra", "p50", "name", "min"]))] = data.draw(junk)
    agree("metadata", doc)


def _bounds(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "const"):
                yield v
            yield from _bounds(v)
    elif isinstance(node, list):
        for v in node:
            yield from _bounds(v)


BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _around(b):
    """A bound, the same as a float, and the numbers just either side of it."""
    return [b, float(b), b - 1, b + 1, b - 1e-9, b + 1e-9]


EDGES = sorted(
    {
        e
        for b in _bounds(S.bundled("metadata"))
        if isinstance(b, (int, float))
        for e in (b, float(b), b - 1, b + 1, b - 1e-9, b + 1e-9)
    }
)


def _copy(node):
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v) for v in node]
    return node


def _slots(node):
    """(container, key) of every value in a document."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        yield node, k
        yield from _slots(v)


def test_every_example_manifest_is_valid_without_jsonschema(monkeypatch):
    def refuse(kind):
        raise AssertionError("jsonschema was asked about a valid manifest")

    monkeypatch.setattr(S, "_validator", refuse)
    assert len(EXAMPLES) > 10
    for doc in EXAMPLES:
        assert S.validate(doc) == []


def test_invalid_manifest_gets_jsonschemas_messages():
    with pytest.raises(ManifestError) as e:
        parse_manifest({**MIN, "precision": "int4", "opset": True, "tolerence": {}}, "arts/cnn/metadata.yaml")
    assert e.value.problems == [  # as before the compiled schema (checked on 5c947d8)
        "tolerence: unknown key; did you mean 'tolerance'?",
        "opset: expected integer, got bool True",
        "precision: 'int4' is not one of fp32, fp16, bf16, int8, uint8, mixed",
    ]


@pytest.mark.parametrize(
    "value, valid",
    [(13, True), (13.0, True), (13.5, False), (True, False), (0, False), ("13", False), (math.inf, False)],
)
def test_integer_minimum_as_jsonschema_reads_them(value, valid):
    """`opset: 13.0` is an integer to jsonschema (Draft 2020-12), `true` is not one, and neither is inf."""
    assert S._fast_validator("metadata")({**MIN, "opset": value}) is valid
    assert (not list(S._validator("metadata").iter_errors({**MIN, "opset": value}))) is valid


def test_a_keyword_it_does_not_know_leaves_the_schema_to_jsonschema():
    with pytest.raises(Unsupported, match="maxLength"):
        compile_schema({"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}})
    with pytest.raises(Unsupported, match="patternProperties"):
        compile_schema({"type": "object", "patternProperties": {"^x": {"type": "string"}}})
    with pytest.raises(Unsupported, match="ref"):
        compile_schema({"$ref": "other.json#/$defs/x"})


def test_a_schema_that_does_not_compile_is_validated_by_jsonschema(monkeypatch):
    monkeypatch.setattr(S, "_fast_validator", lambda kind: None)
    assert S.validate(dict(MIN)) == []
    assert S.validate({**MIN, "opset": 0}) == ["opset: 0 is less than the minimum of 1"]


class _Int(int):
    pass


class _Float(float):
    pass


@pytest.mark.parametrize(
    "document",
    [
        {**MIN, "version": (1, 0)},  # a tuple: no reader of ours makes one
        {**MIN, "limits": {"opset": {"min": _Int(13)}}},  # a number of a type of its own, deep in a mapping
        {**MIN, "inputs": [{"name": "x", "shape": [1, _Float(2.0)]}]},  # ... and in a list
        {**MIN, "inputs": [{"name": "x", "shape": (1, 2)}]},  # a tuple in a list
        {**MIN, 1: "x"},  # a key that is not text
        {**MIN, "machine": {"isa": [str(i) for i in range(1000)]}},  # a long list
    ],
)
def test_what_it_cannot_judge_goes_to_jsonschema(document, monkeypatch):
    with pytest.raises(Unsure):
        S._fast_validator("metadata")(document)
    found = S.validate(document)
    monkeypatch.setattr(S, "_fast_validator", lambda kind: None)
    assert found == S.validate(document)


@pytest.mark.parametrize(
    "one, two, same",
    [
        (1, 1.0, True),
        (True, 1, False),
        (False, 0, False),
        (True, True, True),
        ("1", 1, False),
        ([1, [True]], [1.0, [True]], True),
        ({"a": 1}, {"a": 1.0}, True),
        ({"a": 1}, {"a": True}, False),
        ([1], {"a": 1}, False),
        (None, 0, False),
    ],
)
def test_equality_is_jsonschemas(one, two, same):
    from jsonschema._utils import equal as theirs

    assert equal(one, two) is same
    assert theirs(one, two) is same


def _nodes(node, path="#"):
    """(path, subschema) of every subschema in a schema."""
    if isinstance(node, dict):
        if any(k in node for k in ("type", "enum", "const", "$ref", "oneOf", "not", *BOUNDS)):
            yield path, node
        for k, v in node.items():
            yield from _nodes(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _nodes(v, f"{path}/{i}")


PANEL = [*TEXTS, *NUMBERS, *EDGES, True, False, None, [], {}, ["a"], ["a", "a"], [1, 1.0], {"name": "x"}]


@pytest.mark.parametrize("kind", ["metadata", "policy"])
def test_every_subschema_agrees_on_a_panel_of_values(kind):
    """Each subschema of the shipped schema, compiled alone, against jsonschema on every value of a panel: the
    bounds exactly, just inside and just past, each JSON type, text its patterns refuse."""
    from jsonschema import Draft202012Validator

    root = S.bundled(kind)
    checked = 0
    for path, node in _nodes(root):
        sub = {**node, "$defs": root.get("$defs", {})}
        fast, slow = compile_schema(sub), Draft202012Validator(sub)
        for value in PANEL:
            try:
                said = fast(value)
            except Unsure:
                continue
            assert said == slow.is_valid(value), (path, value)
            checked += 1
    assert checked > 1000


def test_answers_remembered_for_a_value_are_for_that_value_of_that_type():
    """A mapping remembers its answer for each (key, type, value) of a scalar: 1 is not True, 13 is not 13.5, and
    what held for one key says nothing of another; a long text is never kept."""
    valid = compile_schema(S.bundled("metadata"))
    for _ in range(2):  # the second time from what was remembered
        assert valid({**MIN, "opset": 13}) and valid({**MIN, "opset": 13.0}) and valid({**MIN, "opset": 1})
        assert (
            not valid({**MIN, "opset": True}) and not valid({**MIN, "opset": 13.5}) and not valid({**MIN, "opset": 0})
        )
        assert valid({**MIN, "precision": "fp32"}) and not valid({**MIN, "file": "fp32", "format": "fp32"})
        assert not valid({**MIN, "opset": None}) and not valid({**MIN, "version": None})
        assert valid({**MIN, "model_name": "m" * 65}) and not valid({**MIN, "model_name": "\n" + "m" * 65})
    for d in ({**MIN, "opset": True}, {**MIN, "opset": 13.0}, {**MIN, "model_name": "\n" + "m" * 65}):
        assert (not list(S._validator("metadata").iter_errors(d))) is valid(d)
