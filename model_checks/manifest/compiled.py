"""The manifest schema compiled into plain Python predicates: a fast yes for the common case, a valid manifest.

jsonschema walks the schema for every document (1.7 ms a manifest, most of the time collecting 1,000 artifacts
took). This module turns the same schema, once per process, into nested closures that answer one question: would
jsonschema find no error in this document? `manifest.schema.validate` asks it first; on a yes it skips
jsonschema, on anything else (a no, or `Unsure`) jsonschema runs exactly as before and its errors make the
messages. So what a user sees for a bad manifest comes from one place, and this module can only ever save time:
the one thing it must get right is never to say yes where jsonschema would say no (tests/manifest/
test_compiled_schema.py compares the two on generated good and bad documents, both ways).

Only the keywords the shipped schemas use are compiled, with jsonschema's own semantics (Draft 2020-12: a
keyword applies only to instances of its type, `integer` includes floats like 1.0, booleans are not numbers,
`enum` and `const` compare with jsonschema's equality). A schema with any other keyword does not compile
(`Unsupported`), and validation then always goes to jsonschema: a keyword added to the schema later can never be
silently ignored here. A document holding a value YAML cannot produce (a tuple, a Decimal, a key that is not
text) is `Unsure` and goes to jsonschema too.
"""

from __future__ import annotations

import re
from typing import Any, Callable

Predicate = Callable[[Any], bool]

# Keywords that say nothing about validity (annotations), and the ones compiled below.
ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples"})
KEYWORDS = frozenset(
    {
        "$ref",
        "type",
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "pattern",
        "not",
        "oneOf",
        "items",
        "minItems",
        "maxItems",
        "uniqueItems",
        "properties",
        "additionalProperties",
        "required",
        "minProperties",
        "propertyNames",
    }
)
_SCALARS = frozenset({str, int, float, bool, type(None)})
_SEEN_MAX = 4096  # answers kept per mapping schema
UNIQUE_MAX = 256  # uniqueItems over longer lists is left to jsonschema (its own algorithm, whatever the cost)
_JSON_TYPES = (dict, list, str, int, float, bool, type(None))


class Unsupported(Exception):
    """The schema uses something this compiler does not know: validation stays with jsonschema."""


class Unsure(Exception):
    """This document holds something the predicates cannot judge exactly: jsonschema judges it."""


def _is_number(x: Any) -> bool:
    return type(x) is int or type(x) is float


def _type_test(name: str) -> Predicate:
    # jsonschema's Draft 2020-12 type checker, for the exact built-in types a YAML or JSON reader builds
    tests: dict[str, Predicate] = {
        "object": lambda x: type(x) is dict,
        "array": lambda x: type(x) is list,
        "string": lambda x: type(x) is str,
        "boolean": lambda x: type(x) is bool,
        "null": lambda x: x is None,
        "number": _is_number,
        "integer": lambda x: type(x) is int or (type(x) is float and x.is_integer()),
    }
    if name not in tests:
        raise Unsupported(f"type {name!r}")
    return tests[name]


def equal(one: Any, two: Any) -> bool:
    """jsonschema's equality (`jsonschema._utils.equal`) for JSON values: True is not 1, 1.0 is 1, text only
    equals text, lists and mappings compare member by member."""
    if one is two:
        return True
    if type(one) is str or type(two) is str:
        return one == two
    if type(one) is list and type(two) is list:
        return len(one) == len(two) and all(equal(a, b) for a, b in zip(one, two))
    if type(one) is dict and type(two) is dict:
        return len(one) == len(two) and all(k in two and equal(v, two[k]) for k, v in one.items())
    if type(one) is bool or type(two) is bool:
        return type(one) is type(two) and one == two
    if type(one) in (list, dict) or type(two) in (list, dict):
        return False
    return one == two


def _unique(items: list) -> bool:
    """jsonschema's uniqueItems for lists of text or of integers (a set decides); anything else is Unsure."""
    if len(items) > UNIQUE_MAX:
        raise Unsure("long list")
    if all(type(i) is str for i in items) or all(type(i) is int for i in items):
        return len(set(items)) == len(items)
    raise Unsure("uniqueItems over mixed values")


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Predicate] = {}

    def ref(self, ref: str) -> Predicate:
        if not ref.startswith("#/$defs/") or "/" in ref[len("#/$defs/") :]:
            raise Unsupported(f"$ref {ref!r}")
        if ref not in self.refs:
            slot: list[Predicate] = []
            self.refs[ref] = lambda x: slot[0](x)  # a reference may recur: resolved after compiling
            target = self.root.get("$defs", {}).get(ref[len("#/$defs/") :])
            if target is None:
                raise Unsupported(f"$ref {ref!r} names no definition")
            slot.append(self.node(target))
        return self.refs[ref]

    def node(self, schema: Any) -> Predicate:  # noqa: C901 - one branch a keyword, in jsonschema's terms
        if schema is True:
            return lambda x: True
        if schema is False:
            return lambda x: False
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {schema!r}")
        unknown = set(schema) - KEYWORDS - ANNOTATIONS
        if unknown:
            raise Unsupported(", ".join(sorted(unknown)))
        tests: list[Predicate] = []
        if "$ref" in schema:
            tests.append(self.ref(schema["$ref"]))
        if "type" in schema:
            names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            kinds = [_type_test(n) for n in names]
            tests.append(kinds[0] if len(kinds) == 1 else (lambda x, kinds=kinds: any(k(x) for k in kinds)))
        if "enum" in schema:
            values = list(schema["enum"])
            if all(type(v) is str for v in values):
                texts = frozenset(values)
                tests.append(lambda x: type(x) is str and x in texts)
            else:
                tests.append(lambda x: any(equal(v, x) for v in values))
        if "const" in schema:
            tests.append(lambda x, c=schema["const"]: equal(x, c))
        for key, fails in (
            ("minimum", lambda x, b: x < b),
            ("maximum", lambda x, b: x > b),
            ("exclusiveMinimum", lambda x, b: x <= b),
            ("exclusiveMaximum", lambda x, b: x >= b),
        ):
            if key in schema:
                bound = schema[key]
                if not _is_number(bound):
                    raise Unsupported(f"{key} {bound!r}")
                tests.append(lambda x, b=bound, fails=fails: not (_is_number(x) and fails(x, b)))
        if "minLength" in schema:
            tests.append(lambda x, n=schema["minLength"]: type(x) is not str or len(x) >= n)
        if "pattern" in schema:
            search = re.compile(schema["pattern"]).search
            tests.append(lambda x: type(x) is not str or search(x) is not None)
        if "not" in schema:
            inner = self.node(schema["not"])
            tests.append(lambda x: not inner(x))
        if "oneOf" in schema:
            branches = [self.node(s) for s in schema["oneOf"]]
            tests.append(lambda x: sum(1 for b in branches if b(x)) == 1)
        if "items" in schema:
            each = self.node(schema["items"])

            def items(x: Any, each: Predicate = each) -> bool:
                if type(x) is list:
                    for i in x:
                        if not each(i):
                            return False
                return True

            tests.append(items)
        if "minItems" in schema:
            tests.append(lambda x, n=schema["minItems"]: type(x) is not list or len(x) >= n)
        if "maxItems" in schema:
            tests.append(lambda x, n=schema["maxItems"]: type(x) is not list or len(x) <= n)
        if schema.get("uniqueItems") is True:
            tests.append(lambda x: type(x) is not list or _unique(x))
        elif schema.get("uniqueItems", False) is not False:
            raise Unsupported(f"uniqueItems {schema['uniqueItems']!r}")
        if any(
            k in schema for k in ("properties", "additionalProperties", "required", "minProperties", "propertyNames")
        ):
            tests.append(self.mapping(schema))
        return _all_of(tests)

    def mapping(self, schema: dict[str, Any]) -> Predicate:
        """properties, additionalProperties, required, minProperties and propertyNames together: one pass over a
        mapping's keys."""
        props = {k: self.node(v) for k, v in schema.get("properties", {}).items()}
        extra_schema = schema.get("additionalProperties", True)
        extra = None if extra_schema is True else self.node(extra_schema)
        required = tuple(schema.get("required", ()))
        least = schema.get("minProperties", 0)
        names = self.node(schema["propertyNames"]) if "propertyNames" in schema else None

        # (key, type, value) -> the answer for it, for scalar values: manifests repeat the same few (`precision:
        # fp32`), and each answer is a pure function of the key and the value (of its type: 1 is not True or 1.0)
        seen: dict[tuple, bool] = {}

        def test(x: Any) -> bool:
            if type(x) is not dict:
                return True
            if len(x) < least:
                return False
            for r in required:
                if r not in x:
                    return False
            for k, v in x.items():
                if type(k) is not str:
                    raise Unsure("a key that is not text")
                t = type(v)
                scalar = t in _SCALARS and (t is not str or len(v) <= 64)  # (no long text kept)
                if scalar:
                    known = seen.get((k, t, v))
                    if known is not None:
                        if not known:
                            return False
                        continue
                p = props.get(k)
                ok = (names is None or names(k)) and (p(v) if p is not None else (extra is None or extra(v)))
                if scalar and len(seen) < _SEEN_MAX:
                    seen[(k, t, v)] = bool(ok)
                if not ok:
                    return False
            return True

        return test


def _all_of(tests: list[Predicate]) -> Predicate:
    """One predicate that holds where every one of `tests` does (written out for the usual few: this runs for
    every value of every manifest)."""
    if not tests:
        return lambda x: True
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda x: a(x) and b(x)
    if len(tests) == 3:
        a, b, c = tests
        return lambda x: a(x) and b(x) and c(x)

    def every(x: Any) -> bool:
        for t in tests:
            if not t(x):
                return False
        return True

    return every


def compile_schema(schema: dict[str, Any]) -> Predicate:
    """A predicate: True where jsonschema would find no error in the document; False where it would find one;
    raises Unsure where it cannot tell. Raises Unsupported for a schema it cannot compile."""
    check = _Compiler(schema).node(schema)

    def valid(document: Any) -> bool:
        _plain_json(document)
        return check(document)

    return valid


def _plain_json(node: Any, depth: int = 0) -> None:
    """Unsure unless `node` is built of the types a YAML or JSON reader makes (an int subclass, a tuple, a Decimal
    are jsonschema's to judge), nested at most a hundred levels."""
    t = type(node)
    if t is dict:
        if depth > 100:
            raise Unsure("deep")
        for v in node.values():
            if type(v) not in _SCALARS:  # (a scalar of these types is plain: no call for it)
                _plain_json(v, depth + 1)
    elif t is list:
        if depth > 100:
            raise Unsure("deep")
        for v in node:
            if type(v) not in _SCALARS:
                _plain_json(v, depth + 1)
    elif t not in _JSON_TYPES:
        raise Unsure(f"a {t.__name__}")
