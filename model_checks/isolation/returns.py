"""A worker's answer to `call` held to the return type its function declares (Worker._read).

`pool.run_isolated` and `run_confined` run a function of ours in a worker, next to a stranger's model, and hand its
result to the check that asked. A worker the model has taken over can answer with any data the answer's unpickler
allows (frames.ANSWER_CLASSES) in any arrangement: a report whose rows are text, a dict where a tuple was promised.
The check would meet that as an internal error of its own; instead the answer is refused like any other answer that
is not what was asked, and the worker killed. So each such function declares what it returns, and `mismatch` holds
the answer to it: its containers, their items, and each field of our dataclasses, as deep as the value goes."""

from __future__ import annotations

import dataclasses
import functools
import numbers
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

MAX_DEPTH = 32  # deeper than any answer of ours; a value nested deeper (or a list that holds itself) is refused

# What a number the code declares may be: numpy's scalars register as numbers.Real and numbers.Integral.
_NUMBERS: dict[type, type] = {float: numbers.Real, int: numbers.Integral, complex: numbers.Complex}


class Undeclared(TypeError):
    """A function sent to a worker whose return type names what cannot be resolved (a programming error)."""


def declared(fn: Callable[..., Any]) -> Any:
    """The return type `fn` declares, resolved; typing.Any when it declares none. It may name numpy as `np` without
    importing it where it is defined (a check's module, which collection imports, leaves numpy for later)."""
    import numpy

    try:
        return typing.get_type_hints(fn, localns={"np": numpy}).get("return", Any)
    except Exception as e:  # a name only imported under TYPE_CHECKING
        raise Undeclared(f"{getattr(fn, '__qualname__', fn)}'s return type cannot be resolved: {e}") from None


@functools.lru_cache(maxsize=256)
def returns_of(fn: Callable[..., Any]) -> tuple[str, Any] | None:
    """(fn's name, the return type it declares) for Worker.send, None when it declares none (tests' helpers);
    resolved once a function, not on every request that sends it."""
    hint = declared(fn)
    return None if hint is Any else (getattr(fn, "__qualname__", "call"), hint)


def mismatch(value: Any, hint: Any, where: str = "it", depth: int = 0) -> str | None:
    """Where and how `value` is not a `hint` (None when it is), in words: "localize().rows[2].db is a str, not
    float"."""
    if hint is Any or hint is object:
        return None
    if depth > MAX_DEPTH:
        return f"{where} is nested deeper than {MAX_DEPTH} levels"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return mismatch(value, args[0], where, depth)
    if hint is None or hint is type(None):
        return None if value is None else _is_not(where, value, "None")
    if origin is typing.Union or origin is types.UnionType:
        whys = [mismatch(value, a, where, depth) for a in args]
        if None in whys:
            return None
        kinds = [
            w for a, w in zip(args, whys) if isinstance(k := typing.get_origin(a) or a, type) and isinstance(value, k)
        ]
        if len(kinds) == 1:  # the right kind for one of them, with something wrong inside: say what
            return kinds[0]
        return _is_not(where, value, " or ".join(_name(a) for a in args))
    if origin is typing.Literal:
        return None if any(type(value) is type(a) and value == a for a in args) else f"{where} is not one of {args}"
    if isinstance(origin, type):
        if not isinstance(value, origin):
            return _is_not(where, value, _name(hint))
        return _items(value, origin, args, where, depth)
    if not isinstance(hint, type):  # a TypeVar, a Callable: nothing to hold an answer of ours to
        return None
    if hint in _NUMBERS:
        ok = isinstance(value, _NUMBERS[hint]) and not isinstance(value, bool)
        return None if ok else _is_not(where, value, hint.__name__)
    if hint is bool:  # numpy's bool is no bool subclass, and `x > 0` on an array's item makes one
        numpy = sys.modules.get("numpy")  # imported already if the answer holds one: unpickling it imported numpy
        ok = isinstance(value, bool) or (numpy is not None and isinstance(value, numpy.bool_))
        return None if ok else _is_not(where, value, "bool")
    if not isinstance(value, hint):
        return _is_not(where, value, _name(hint))
    if dataclasses.is_dataclass(hint):
        for name, field_hint in _fields(hint):
            why = mismatch(getattr(value, name, None), field_hint, f"{where}.{name}", depth + 1)
            if why is not None:
                return why
    return None


def _items(value: Any, origin: type, args: tuple, where: str, depth: int) -> str | None:
    """The items of a container that is the right kind, held to its parameters (list[X], tuple[X, Y],
    tuple[X, ...], dict[K, V], set[X])."""
    if not args:
        return None
    if issubclass(origin, Mapping):
        for k, v in value.items():
            why = mismatch(k, args[0], f"{where}'s key {_short(k)}", depth + 1)
            if why is None and len(args) > 1:
                why = mismatch(v, args[1], f"{where}[{_short(k)}]", depth + 1)
            if why is not None:
                return why
        return None
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        if args == ((),):
            args = ()
        if len(value) != len(args):
            return f"{where} has {len(value)} items, not {len(args)}"
        pairs = zip(value, args)
    elif issubclass(origin, (Sequence, set, frozenset)):
        pairs = ((v, args[0]) for v in value)
    else:  # NDArray[np.float32] and the like: the right kind is all that is held
        return None
    for i, (v, a) in enumerate(pairs):
        why = mismatch(v, a, f"{where}[{i}]", depth + 1)
        if why is not None:
            return why
    return None


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, Any], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints.get(f.name, Any)) for f in dataclasses.fields(cls))


def _is_not(where: str, value: Any, expected: str) -> str:
    kind = type(value).__name__
    return f"{where} is {'an' if kind[:1] in 'aeiou' else 'a'} {kind}, not {expected}"


def _name(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return re.sub(
        r"\b(?:\w+\.)+(\w+)", r"\1", str(hint)
    )  # tuple[model_checks.localize.report.Row, ...]: tuple[Row, ...]


def _short(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."
