"""Every path an artifact names must stay inside its artifacts root, checked before any library reads it.

Refused: absolute paths, paths that climb out with `..`, symlinks whose target lies outside the root, and
files with more than one hard link (a hard link can alias a file outside the root without a trace in
its path). Refusals raise UnsafePathError with the manifest key that named the path.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath

from model_checks.core.errors import ArtifactLoadError, UnsafePathError

MAX_FILE_BYTES = 4 * 1024**3  # a cap on any single file the gate reads


def _is_absolute(text: str) -> bool:
    if ":" not in text and not text.startswith(("/", "\\", "~")):
        return False  # no root and no drive, on either flavour: the common case, without building two paths
    return PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute() or text.startswith("~")


_REAL_ROOTS: dict[tuple[str, str], tuple[tuple[int, int], str]] = {}  # (cwd, root) -> (identity, realpath)
_REAL_ROOTS_MAX = 256


def _real_root(root: Path) -> str:
    """`os.path.realpath(root)`, worked out once per root rather than once per path (a realpath costs a system
    call per component): kept while `root` still names the same directory (device and inode, one stat). Only the
    root's own realpath is kept; every path below it is resolved afresh on every call, so a link inside the root
    swapped after a check is judged by where it leads now, and a root that has come to name another directory is
    worked out again."""
    text = os.fspath(root)
    key = ("" if os.path.isabs(text) else os.getcwd(), text)
    try:
        st = os.stat(text)
    except OSError:
        return os.path.realpath(text)  # not there, or not reachable: nothing to keep
    ident = (st.st_dev, st.st_ino)
    known = _REAL_ROOTS.get(key)
    if known is not None and known[0] == ident:
        return known[1]
    real = os.path.realpath(text)
    if len(_REAL_ROOTS) >= _REAL_ROOTS_MAX:
        _REAL_ROOTS.clear()
    _REAL_ROOTS[key] = (ident, real)
    return real


def resolve_inside(root: Path, base: Path, text: str, key: str) -> Path:
    """Resolve `text` (relative to `base`) and prove it stays inside `root`; `key` names it in errors."""
    if not text or "\x00" in text:
        raise UnsafePathError(f"{key}: {text!r} is not a usable path")
    if _is_absolute(text):
        raise UnsafePathError(f"{key}: {text!r} is absolute; paths in a manifest are relative to its directory")
    root_abs = os.path.normpath(os.path.abspath(root))
    lexical = os.path.normpath(os.path.abspath(os.path.join(base, text)))  # absolute: a relative base compares right
    if not _below(lexical, root_abs):
        raise UnsafePathError(f"{key}: {text!r} climbs out of the artifacts root {root}")
    real = os.path.realpath(lexical)
    if not _below(real, _real_root(root)):
        raise UnsafePathError(f"{key}: {text!r} resolves (through a symlink) outside the artifacts root {root}")
    return Path(real)


def _below(path: str, parent: str) -> bool:
    """Whether normalized absolute `path` is `parent` or lies below it (`Path.relative_to`'s test, on text)."""
    return path == parent or path.startswith(parent if parent.endswith(os.sep) else parent + os.sep)


def check_regular_file(path: Path, key: str, max_bytes: int = MAX_FILE_BYTES) -> int:
    """A regular file of bounded size with no hard-link aliases; returns its size."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ArtifactLoadError(f"{key}: {path.name} does not exist") from None
    if not stat.S_ISREG(st.st_mode):  # the stat just taken (Path.is_file would take another)
        raise UnsafePathError(f"{key}: {path.name} is not a regular file")
    if st.st_nlink > 1:
        raise UnsafePathError(
            f"{key}: {path.name} has {st.st_nlink} hard links; a hard link can alias a file outside the root"
        )
    if st.st_size > max_bytes:
        raise UnsafePathError(f"{key}: {path.name} is {st.st_size} bytes, over the cap of {max_bytes} bytes")
    return st.st_size
