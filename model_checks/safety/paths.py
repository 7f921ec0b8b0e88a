"""Every path an artifact names must stay inside its artifacts root, checked before any library reads it.

Refused: absolute paths, paths that climb out with `..`, symlinks whose target lies outside the root, and
files with more than one hard link (a hard link can alias a file outside the root without a trace in
its path). Refusals raise UnsafePathError with the manifest key that named the path.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from model_checks.core.errors import ArtifactLoadError, UnsafePathError

MAX_FILE_BYTES = 4 * 1024**3  # a cap on any single file the gate reads


def _is_absolute(text: str) -> bool:
    return PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute() or text.startswith("~")


def resolve_inside(root: Path, base: Path, text: str, key: str) -> Path:
    """Resolve `text` (relative to `base`) and prove it stays inside `root`; `key` names it in errors."""
    if not text or "\x00" in text:
        raise UnsafePathError(f"{key}: {text!r} is not a usable path")
    if _is_absolute(text):
        raise UnsafePathError(f"{key}: {text!r} is absolute; paths in a manifest are relative to its directory")
    root_real = Path(os.path.realpath(root))
    lexical = Path(os.path.normpath(os.path.abspath(base / text)))  # absolute, so a relative base compares right
    real = Path(os.path.realpath(lexical))
    for candidate, what in ((lexical, "climbs out of"), (real, "resolves (through a symlink) outside")):
        try:
            candidate.relative_to(
                root_real if what != "climbs out of" else Path(os.path.normpath(os.path.abspath(root)))
            )
        except ValueError:
            raise UnsafePathError(f"{key}: {text!r} {what} the artifacts root {root}") from None
    return real


def check_regular_file(path: Path, key: str, max_bytes: int = MAX_FILE_BYTES) -> int:
    """A regular file of bounded size with no hard-link aliases; returns its size."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ArtifactLoadError(f"{key}: {path.name} does not exist") from None
    if not path.is_file():
        raise UnsafePathError(f"{key}: {path.name} is not a regular file")
    if st.st_nlink > 1:
        raise UnsafePathError(
            f"{key}: {path.name} has {st.st_nlink} hard links; a hard link can alias a file outside the root"
        )
    if st.st_size > max_bytes:
        raise UnsafePathError(f"{key}: {path.name} is {st.st_size} bytes, over the cap of {max_bytes} bytes")
    return st.st_size
