"""A hardened YAML loader for manifests.

Manifests arrive in pull requests from strangers, so the loader refuses everything a data file does not
need: Python tags (SafeLoader already has no constructor for them), anchors and aliases (the alias bomb),
duplicate keys (YAML keeps the last one silently) and files larger than a cap. It reads `1e-3` as a
float, which YAML 1.1 would read as the string "1e-3".
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from model_checks.core.errors import ManifestError

MAX_MANIFEST_BYTES = 256 * 1024

# YAML 1.1 needs a dot in a float; people write 1e-3. This resolver is YAML 1.2's float pattern.
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


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
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise _Refused(f"line {key_node.start_mark.line + 1}: a mapping key must be a plain value")
            if key in seen:
                raise _Refused(
                    f"line {key_node.start_mark.line + 1}: duplicate key {key!r} "
                    f"(first at line {seen[key]})"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_undefined(self, node):  # type: ignore[no-untyped-def]
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise _Refused(f"line {node.start_mark.line + 1}: the tag {tag} is not allowed in a manifest (no Python tags, no custom tags)")


class _Refused(Exception):
    pass


# Our own resolver table: no timestamps (a date should stay text), YAML 1.2 floats.
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:float")]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
_Loader.add_constructor(None, _Loader.construct_undefined)


def _version_text(root: yaml.Node) -> str | None:
    """The `version` value as written: `1.10` must stay "1.10", not become the float 1.1."""
    if isinstance(root, yaml.MappingNode):
        for k, v in root.value:
            if isinstance(k, yaml.ScalarNode) and k.value == "version" and isinstance(v, yaml.ScalarNode):
                return v.value
    return None


_RESOLVER = _Loader("")
_SCALARS = yaml.constructor.SafeConstructor()
_CLoader = getattr(yaml, "CSafeLoader", None)


def _plain(node: yaml.ScalarNode) -> Any:
    """A plain scalar resolved by _Loader's rules (YAML 1.2 floats, no timestamps)."""
    tag = _RESOLVER.resolve(yaml.ScalarNode, node.value, (True, False))
    if tag == "tag:yaml.org,2002:str":
        return node.value
    return {
        "tag:yaml.org,2002:null": _SCALARS.construct_yaml_null,
        "tag:yaml.org,2002:bool": _SCALARS.construct_yaml_bool,
        "tag:yaml.org,2002:int": _SCALARS.construct_yaml_int,
        "tag:yaml.org,2002:float": _SCALARS.construct_yaml_float,
    }[tag](yaml.ScalarNode(tag, node.value))


def _build(node: yaml.Node, depth: int = 0) -> Any:
    if depth > 64:
        raise RecursionError
    if isinstance(node, yaml.ScalarNode):
        return _plain(node) if not node.style else node.value  # libyaml marks plain scalars with style ""
    if isinstance(node, yaml.SequenceNode):
        return [_build(n, depth + 1) for n in node.value]
    out: dict[Any, Any] = {}
    lines: dict[Any, int] = {}
    for k, v in node.value:
        key = _build(k, depth + 1)
        try:
            hash(key)
        except TypeError:
            raise _Refused(f"line {k.start_mark.line + 1}: a mapping key must be a plain value") from None
        if key in out:
            raise _Refused(f"line {k.start_mark.line + 1}: duplicate key {key!r} (first at line {lines[key]})")
        lines[key] = k.start_mark.line + 1
        out[key] = _build(v, depth + 1)
    return out


def _fast(text: str) -> tuple[bool, Any]:
    """libyaml composes, Python builds: about 3 times faster. Only for text that cannot hold anchors,
    aliases or tags; the pure-Python loader, with its exact messages, takes everything else."""
    if _CLoader is None or any(c in text for c in "&*!"):
        return False, None
    loader = _CLoader(text)
    try:
        root = loader.get_single_node()
    finally:
        loader.dispose()
    if root is None:
        return True, None
    data = _build(root)
    version = _version_text(root)
    if version is not None and isinstance(data, dict) and not isinstance(data.get("version"), str):
        data["version"] = version
    return True, data


def load_yaml_text(text: str, file: str) -> Any:
    """Parse manifest text; every refusal is a ManifestError that names the file."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_MANIFEST_BYTES:
        raise ManifestError(file, f"larger than {MAX_MANIFEST_BYTES // 1024} KiB; a manifest is a small file")
    if "\x00" in text:
        raise ManifestError(file, "is binary, not YAML text")
    try:
        done, data = _fast(text)
        if done:
            return data
    except _Refused as e:
        raise ManifestError(file, str(e)) from None
    except yaml.YAMLError:
        pass  # the pure-Python loader below gives the message with its line and column
    except RecursionError:
        raise ManifestError(file, "nested too deeply") from None
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        data = loader.construct_document(root)
        version = _version_text(root)
        if version is not None and isinstance(data, dict) and not isinstance(data.get("version"), str):
            data["version"] = version
        return data
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


def load_yaml_file(path: Path, display: str | None = None) -> Any:
    """Read and parse a manifest file, refusing oversized or undecodable files before parsing."""
    name = display or str(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ManifestError(name, f"cannot be read ({e.strerror})") from None
    if size > MAX_MANIFEST_BYTES:
        raise ManifestError(name, f"is {size} bytes, larger than {MAX_MANIFEST_BYTES // 1024} KiB; a manifest is a small file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError(name, "is binary or not UTF-8 text") from None
    return load_yaml_text(text, name)
