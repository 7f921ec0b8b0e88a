"""A hardened YAML loader for manifests.

Manifests arrive in pull requests from strangers, so the loader refuses everything a data file does not
need: Python tags (SafeLoader already has no constructor for them), anchors and aliases (the alias bomb),
duplicate keys (YAML keeps the last one silently) and files larger than a cap. It reads `1e-3` as a
float, which YAML 1.1 would read as the string "1e-3".
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any, Iterator

import yaml

from model_checks.core.errors import ManifestError

MAX_MANIFEST_BYTES = 256 * 1024
MAX_DEPTH = 64  # levels of nested lists and mappings; a manifest needs about five

# YAML 1.1 needs a dot in a float; people write 1e-3. This resolver is YAML 1.2's float pattern.
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


def _check_key(key: Any, line: int, seen: dict[Any, int]) -> None:
    """Keys are text and appear once in their mapping (`seen`: key -> its line, updated here): a number, a
    boolean or null as a key (`1:`, `~:`) is a mistake, a YAML merge key (`<<:`) would splice in a mapping the
    reader does not see, and YAML itself keeps the last of two equal keys silently. Both builders call this."""
    if key == "<<":
        raise _Refused(f"line {line}: merge keys (<<) are not allowed in a manifest; write the keys out")
    if not isinstance(key, str):
        raise _Refused(
            f"line {line}: the key {key!r} is {type(key).__name__}, not text; quote it ('{key}') if it is a name"
        )
    if key in seen:
        raise _Refused(f"line {line}: duplicate key {key!r} (first at line {seen[key]})")
    seen[key] = line


def _version_as_written(data: Any, version: str | None) -> Any:
    """`version` as written: `1.10` must stay "1.10", not become the float 1.1. Both builders call this."""
    if version is not None and isinstance(data, dict) and not isinstance(data.get("version"), str):
        data["version"] = version
    return data


# Tags SafeLoader would build into values JSON has no type for: refused like any other explicit tag.
_NO_TAGS = ("binary", "set", "omap", "pairs", "timestamp", "merge", "value")


class _Loader(yaml.SafeLoader):
    """SafeLoader without anchors, aliases, duplicate keys or timestamps."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(f"line {event.start_mark.line + 1}: aliases (*{event.anchor}) are not allowed")
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _Refused(f"line {event.start_mark.line + 1}: anchors (&{anchor}) are not allowed")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused(f"line {key_node.start_mark.line + 1}: a mapping key must be a plain value")
            _check_key(self.construct_object(key_node, deep=True), key_node.start_mark.line + 1, seen)
        return super().construct_mapping(node, deep=deep)

    def construct_undefined(self, node):  # type: ignore[no-untyped-def]
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise _Refused(
            f"line {node.start_mark.line + 1}: the tag {tag} is not allowed in a manifest (no Python tags, no custom tags)"
        )


class _Refused(Exception):
    pass


# Our own resolver table: no timestamps (a date should stay text), YAML 1.2 floats, and `<<` and `=` plain
# text (YAML 1.1's merge and value keys), which _check_key then judges.
_DROPPED = {f"tag:yaml.org,2002:{t}" for t in ("timestamp", "float", "merge", "value")}
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in _DROPPED] for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
_Loader.add_constructor(None, _Loader.construct_undefined)
for _tag in _NO_TAGS:
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _Loader.construct_undefined)


def _version_text(root: yaml.Node) -> str | None:
    """The `version` value as written: `1.10` must stay "1.10", not become the float 1.1."""
    if isinstance(root, yaml.MappingNode):
        for k, v in root.value:
            if isinstance(k, yaml.ScalarNode) and k.value == "version" and isinstance(v, yaml.ScalarNode):
                return v.value
    return None


_RESOLVER = _Loader("")
_SCALARS = yaml.constructor.SafeConstructor()
try:
    from yaml.cyaml import CParser as _CParser
except ImportError:  # PyYAML built without libyaml: only the pure-Python loader, which recurses in Python
    _CParser = None  # type: ignore[assignment,misc]


_PLAIN_SEEN: dict[str, Any] = {}  # plain scalar text -> its value (text, number, bool or None: nothing mutable)
_PLAIN_SEEN_MAX = 4096


def _plain(text: str) -> Any:
    """A plain scalar resolved by _Loader's rules (YAML 1.2 floats, no timestamps); manifests repeat the same few
    (`fp32`, `model.onnx`, `1e-3`), so short ones are remembered."""
    try:
        return _PLAIN_SEEN[text]
    except KeyError:
        pass
    value = _resolve_plain(text)
    if len(text) <= 64:
        if len(_PLAIN_SEEN) >= _PLAIN_SEEN_MAX:
            _PLAIN_SEEN.clear()
        _PLAIN_SEEN[text] = value
    return value


def _resolve_plain(text: str) -> Any:
    tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))
    if tag == "tag:yaml.org,2002:str":
        return text
    return {
        "tag:yaml.org,2002:null": _SCALARS.construct_yaml_null,
        "tag:yaml.org,2002:bool": _SCALARS.construct_yaml_bool,
        "tag:yaml.org,2002:int": _SCALARS.construct_yaml_int,
        "tag:yaml.org,2002:float": _SCALARS.construct_yaml_float,
    }[tag](yaml.ScalarNode(tag, text))


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before anything recursive sees the text: libyaml's composer
    recurses in C, and 100,000 `[` fit under the size cap (a segmentation fault, not an exception). The
    event parser it is built on keeps its own stack, so counting its events is safe at any depth. Text it
    cannot parse is left to the pure-Python loader, which gives the message and recurses in Python only."""
    if _CParser is None:
        return
    try:
        for _ in _events(text):
            pass
    except yaml.YAMLError:
        return


def _events(text: str) -> Iterator[yaml.Event]:
    """libyaml's events for `text` up to the end of the stream, refusing nesting deeper than MAX_DEPTH as they come."""
    parser = _CParser(text)
    depth = 0
    try:
        while True:
            event = parser.get_event()
            if event is None or isinstance(event, yaml.StreamEndEvent):
                return
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _Refused(
                        f"line {event.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep; a manifest needs a few"
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            yield event
    finally:
        parser.dispose()


class _Frame:
    """A mapping or list being built from events; for a mapping, the key waiting for its value."""

    __slots__ = ("value", "key", "lines")

    def __init__(self, value: dict | list) -> None:
        self.value = value
        self.key: Any = _NO_KEY
        self.lines: dict[Any, int] = {}


_NO_KEY = object()


def _place(frame: _Frame | None, value: Any, event: yaml.Event, scalar: bool) -> None:
    """Put `value` into the container being built: a list item, a mapping's key, or the value of its key."""
    if frame is None:
        return
    if isinstance(frame.value, list):
        frame.value.append(value)
        return
    line = event.start_mark.line + 1
    if frame.key is _NO_KEY:
        if not scalar:
            raise _Refused(f"line {line}: a mapping key must be a plain value")
        _check_key(value, line, frame.lines)
        frame.key = value
    else:
        frame.value[frame.key] = value
        frame.key = _NO_KEY


# What each event libyaml's parser makes means to _fast (it makes these exact classes; any other, such as the
# stream's start or a document's end, changes nothing).
_SCALAR, _START, _END, _DOCUMENT, _STOP = range(5)
_EVENT_KIND = {
    yaml.ScalarEvent: _SCALAR,
    yaml.MappingStartEvent: _START,
    yaml.SequenceStartEvent: _START,
    yaml.MappingEndEvent: _END,
    yaml.SequenceEndEvent: _END,
    yaml.DocumentStartEvent: _DOCUMENT,
    yaml.StreamEndEvent: _STOP,
}


def _fast(text: str) -> tuple[bool, Any]:
    """libyaml parses, Python builds from its events: about 3 times faster than the pure-Python loader, and
    without recursion (libyaml's composer recurses in C, and 100,000 `[` fit under the size cap), so depth
    is counted as it goes. Only for text that cannot hold anchors, aliases or tags; the pure-Python loader,
    with its exact messages, takes everything else, and any text libyaml cannot parse. (The loop is `_events`
    and `_place` written out, one dispatch an event: it runs for every manifest of a tree.)"""
    if _CParser is None or any(c in text for c in "&*!"):
        return False, None
    stack: list[_Frame] = []
    root: Any = None
    version: str | None = None
    documents = 0
    parser = _CParser(text)
    try:
        while True:
            event = parser.get_event()
            kind = _EVENT_KIND.get(type(event))
            if kind == _SCALAR:
                value = _plain(event.value) if not event.style else event.value  # libyaml: plain scalars style ""
                if not stack:
                    root = value
                    continue
                top = stack[-1]
                if type(top.value) is list:
                    top.value.append(value)
                elif top.key is _NO_KEY:
                    _check_key(value, event.start_mark.line + 1, top.lines)
                    top.key = value
                else:
                    if len(stack) == 1 and top.key == "version":
                        version = event.value  # as written: `1.10` stays "1.10", not the float 1.1
                    top.value[top.key] = value
                    top.key = _NO_KEY
            elif kind == _START:
                if len(stack) >= MAX_DEPTH:
                    raise _Refused(
                        f"line {event.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep; a manifest needs a few"
                    )
                frame = _Frame({} if type(event) is yaml.MappingStartEvent else [])
                _place(stack[-1] if stack else None, frame.value, event, scalar=False)
                stack.append(frame)
            elif kind == _END:
                done = stack.pop()
                if not stack:
                    root = done.value
            elif kind == _DOCUMENT:
                documents += 1
                if documents > 1:
                    raise yaml.YAMLError("more than one document")  # the pure-Python loader says where
            elif event is None or kind == _STOP:
                break
    finally:
        parser.dispose()
    return True, _version_as_written(root, version)


# -- the common shape, read line by line ---------------------------------------------------------------------------
# Nearly every manifest is block mappings and lists of plain or simply quoted scalars, with short flow lists and
# mappings of plain scalars (`shape: [batch, 3]`, `tolerance: {rel_l2: 1e-3}`). `_lines` reads exactly that
# shape without libyaml's events (a third of the cost of reading a manifest), and answers None for anything else:
# then `_fast` and the pure-Python loader read the text as before, so every refusal and message comes from them.
# Scalars are resolved by the same `_plain` as on the fast path; what `_lines` must get right is only the text of
# each scalar and which container it belongs to (tests/manifest/test_yamlsafe.py compares it with the pure-Python
# loader on generated and mutated documents).
_LINE = re.compile(r"( *)(- )?(?:([A-Za-z_][A-Za-z0-9_.-]{0,127}):(?: +(.+))?|(.+))")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
# a plain scalar on one line, of characters that mean nothing to YAML there (no `:#,[]{}&*!|>'"%@?` and no tab);
# a leading `-` only before a letter, a digit or a dot (`-1`, `-.5`: `- ` starts a list item)
_PLAIN = re.compile(r"(?:-[A-Za-z0-9.]|[A-Za-z0-9_./()+~=^$])(?:[A-Za-z0-9_./()+~=^$ -]*[A-Za-z0-9_./()+~=^$-])?")
_AWKWARD = re.compile(r"[\x00-\x09\x0b-\x1f\x7f&*!\\\r]")  # control characters, tabs, CR, anchors, aliases, tags
_LINES_DEPTH = 16  # deeper documents are left to the readers that count depth and say so


class _Other(Exception):
    """Not the common shape: the text goes to the general readers."""


def _lines(text: str) -> Any:
    """The document, read line by line, or None where its text is not the common shape (see above)."""
    if not text.isascii() or _AWKWARD.search(text):
        return None
    try:
        return _read_lines(text)
    except Exception:  # noqa: BLE001 - _Other, or a scalar the resolver cannot build (`._`): the general readers
        return None  # then read it exactly as they did before, and say what they said


def _read_lines(text: str) -> Any:  # noqa: C901 - one loop over lines, as _fast is one loop over events
    root: dict[str, Any] = {}
    stack: list[tuple[int, Any, bool]] = [(0, root, False)]  # (indent, container, is a list)
    pending: tuple[dict, str, int] | None = None  # a `key:` with nothing after it: (its mapping, key, indent)
    version: str | None = None
    for line in text.split("\n"):
        parts = _LINES_SEEN.get(line)
        if parts is None:
            parts = _line_parts(line)
        if parts is _BLANK:
            continue  # a blank line or a whole-line comment
        ind, dash, key, value, item = parts
        if pending is not None:  # what follows `key:` is its value: a nested block, or nothing (null)
            parent, pkey, pind = pending
            pending = None
            if dash and ind >= pind:
                parent[pkey] = new = []
                stack.append((ind, new, True))
            elif not dash and ind > pind:
                parent[pkey] = new = {}
                stack.append((ind, new, False))
            else:
                parent[pkey] = None
                if parent is root and pkey == "version":
                    version = ""  # as libyaml reads an empty value
        is_list = dash is not None
        while True:
            sind, container, seq = stack[-1]
            if sind == ind and seq == is_list:
                break
            if sind > ind or (sind == ind and seq):
                stack.pop()
                if not stack:
                    raise _Other
                continue
            raise _Other  # deeper than the block it is in (a continued scalar), or an item among keys
        if len(stack) > _LINES_DEPTH:
            raise _Other
        if is_list:
            if key is None:
                container.append(_value_of(item))
                continue
            container.append(new := {})
            ind += 2
            stack.append((ind, new, False))
            container = new
        elif key is None:
            raise _Other  # a bare scalar among keys
        k = _plain(key)
        if type(k) is not str or k in container:
            raise _Other  # a key that is not text, or a duplicate: the general readers refuse it with its line
        if value is None:
            pending = (container, k, ind)
            continue
        container[k] = _value_of(value)
        if container is root and k == "version" and value[0] not in "[{'\"":
            version = value
    if pending is not None:
        parent, pkey, _ = pending
        parent[pkey] = None
        if parent is root and pkey == "version":
            version = ""
    if not root:
        raise _Other  # an empty document (or only comments): rare, the general readers say what it is
    return _version_as_written(root, version)


_LINES_SEEN: dict[str, tuple] = {}  # a line as written -> its parts (manifests of a tree repeat most of their lines)
_BLANK = ()


def _line_parts(line: str) -> tuple:
    """(indent, dash, key, value, item) of one line (`_LINE`'s groups, the indent as its width), or _BLANK for a
    blank line or a whole-line comment; _Other where the line is not of the common shape. Remembered for short
    lines: the parts are text, the same for the same line wherever it appears."""
    text = line.rstrip(" ")
    if not text or text.lstrip(" ")[0] == "#":
        parts: tuple = _BLANK
    else:
        if "#" in text:
            raise _Other
        m = _LINE.fullmatch(text)
        if m is None:
            raise _Other
        indent, dash, key, value, item = m.groups()
        parts = (len(indent), dash, key, value, item)
    if len(line) <= 128:
        if len(_LINES_SEEN) >= _PLAIN_SEEN_MAX:
            _LINES_SEEN.clear()
        _LINES_SEEN[line] = parts
    return parts


_VALUES_SEEN: dict[str, Any] = {}  # a scalar's text as written -> its value (immutable: text, number, bool, None)
_NOTHING = object()


def _value_of(text: str) -> Any:
    """`_value`, remembered for scalars (manifests repeat the same few: `model.onnx`, `fp32`, `'1.0'`)."""
    value = _VALUES_SEEN.get(text, _NOTHING)
    if value is _NOTHING:
        value = _value(text)
        if type(value) is not list and type(value) is not dict and len(text) <= 64:
            if len(_VALUES_SEEN) >= _PLAIN_SEEN_MAX:
                _VALUES_SEEN.clear()
            _VALUES_SEEN[text] = value
    return value


def _value(text: str) -> Any:
    first = text[0]
    if first == "[":
        if text[-1] != "]":
            raise _Other
        inner = text[1:-1].strip(" ")
        return [_flow(t) for t in inner.split(",")] if inner else []
    if first == "{":
        if text[-1] != "}":
            raise _Other
        inner = text[1:-1].strip(" ")
        out: dict[str, Any] = {}
        for pair in inner.split(",") if inner else ():
            k, sep, v = pair.strip(" ").partition(": ")
            if not sep or _KEY.fullmatch(k) is None:
                raise _Other
            key = _plain(k)
            if type(key) is not str or key in out:
                raise _Other
            out[key] = _flow(v)
        return out
    return _scalar(text)


def _scalar(text: str) -> Any:
    """A scalar in block context: plain, or quoted without a quote or backslash inside."""
    first = text[0]
    if first == "'" or first == '"':
        if len(text) >= 2 and text[-1] == first and first not in text[1:-1]:
            return text[1:-1]
        raise _Other
    if _PLAIN.fullmatch(text) is None:
        raise _Other
    return _plain(text)


def _flow(text: str) -> Any:
    """A plain scalar inside `[...]` or `{...}`."""
    text = text.strip(" ")
    if _PLAIN.fullmatch(text) is None:
        raise _Other
    return _plain(text)


def load_yaml_text(text: str, file: str) -> Any:
    """Parse manifest text; every refusal is a ManifestError that names the file."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_MANIFEST_BYTES:
        raise ManifestError(file, f"larger than {MAX_MANIFEST_BYTES // 1024} KiB; a manifest is a small file")
    if "\x00" in text:
        raise ManifestError(file, "is binary, not YAML text")
    data = _lines(text)
    if data is not None:
        return data
    try:
        done, data = _fast(text)
        if done:
            return data
    except _Refused as e:
        raise ManifestError(file, str(e)) from None
    except yaml.YAMLError:
        pass  # the pure-Python loader below gives the message with its line and column
    try:
        _check_depth(text)  # the pure-Python composer recurses too: not past MAX_DEPTH either
    except _Refused as e:
        raise ManifestError(file, str(e)) from None
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        return _version_as_written(loader.construct_document(root), _version_text(root))
    except _Refused as e:
        raise ManifestError(file, str(e)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ManifestError(file, f"{where}not valid YAML ({problem})") from None
    except RecursionError:
        raise ManifestError(file, "nested too deeply") from None
    finally:
        loader.dispose()


def _read_at_most(fd: int, limit: int) -> bytes:
    """Up to `limit` bytes of an open file, to its end (os.read on the descriptor: a buffered file object around it
    costs as much as the read of a small manifest)."""
    chunks = []
    while limit > 0:
        chunk = os.read(fd, limit)
        if not chunk:
            break
        chunks.append(chunk)
        limit -= len(chunk)
    return b"".join(chunks)


def load_yaml_file(path: Path, display: str | None = None) -> Any:
    """Read and parse a manifest file, refusing oversized, undecodable or non-regular files before parsing.

    Opened without blocking and judged by the open file itself: a named pipe or a device under a manifest's
    name is refused, never waited on, and a file swapped after a check cannot slip past it."""
    name = display or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise ManifestError(name, f"cannot be read ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ManifestError(
                name, "is not a regular file (a named pipe, a device or a socket); a manifest is a small text file"
            )
        if st.st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(
                name, f"is {st.st_size} bytes, larger than {MAX_MANIFEST_BYTES // 1024} KiB; a manifest is a small file"
            )
        raw = _read_at_most(fd, MAX_MANIFEST_BYTES + 1)
    finally:
        os.close(fd)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError(name, "is binary or not UTF-8 text") from None
    return load_yaml_text(text, name)
