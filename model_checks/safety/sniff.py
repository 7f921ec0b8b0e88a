"""What a file holds, judged by its first bytes, so a pickle named `.onnx` never reaches a parser. The container
kinds are known here; a framework's own kind (`onnx`) is its backend folder's declaration (`Framework.sniff`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable

# A Git LFS pointer: the small text file git keeps in place of a file stored with LFS until its content is fetched
# (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md: at most 1024 bytes, `version` first).
LFS_POINTER_MAX_BYTES = 1024
# `version` names the spec; git-lfs still reads pointers written before 1.0 (hawser's), as its spec says
_LFS_VERSIONS = (b"version https://git-lfs.github.com/spec/", b"version https://hawser.github.com/spec/")


# Where git makes no symbolic links (core.symlinks=false: Windows without Developer Mode or the right to make them, a
# filesystem without links), it checks a link out as a small plain file holding the link's target, with no line break
# (git-config(1), core.symlinks). At most PATH_MAX bytes on Linux.
LINK_TEXT_MAX_BYTES = 4096


def sniff_bytes(head: bytes) -> str:
    """A framework's kind (`tflite`, `onnx`), `zip`, `pickle`, `hdf5`, `numpy`, `text`, `empty` or `unknown`.
    A framework's magic number is tried first, a heuristic (ONNX's) after the containers."""
    from model_checks.backends.registry import sniff_kind

    if not head:
        return "empty"
    if (kind := sniff_kind(head, weak=False)) is not None:
        return kind
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if (kind := sniff_kind(head, weak=True)) is not None:
        return kind
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unknown"


def sniff(path: Path, n: int = 16) -> str:
    with open(path, "rb") as f:
        return sniff_bytes(f.read(n))


def lfs_pointer(path: Path) -> tuple[str, int] | None:
    """(oid, size) when `path` is a regular file that is a Git LFS pointer, else None: a checkout that has not fetched
    its LFS content (CI without `lfs: true`, a clone without git-lfs) holds these where the models are, so the same
    commit is a model on one machine and a 130-byte text file on another."""
    head = _small_file(path, LFS_POINTER_MAX_BYTES, os.stat)
    if head is None or not head.startswith(_LFS_VERSIONS):
        return None
    fields = dict(line.partition(" ")[::2] for line in head.decode("ascii", "replace").splitlines())
    oid, size = fields.get("oid", ""), fields.get("size", "")
    if not oid.startswith("sha256:") or not size.isdigit():
        return None
    return oid, int(size)


def lfs_problem(path: Path) -> str | None:
    """What to say of `path` when it is a Git LFS pointer (after "<key>: <name> "), else None."""
    if (pointer := lfs_pointer(path)) is None:
        return None
    oid, size = pointer
    return (
        f"is a Git LFS pointer to a file of {size:,} bytes ({oid[:19]}...), not the file: this checkout has not "
        "fetched its LFS content. Fetch it where the gate runs (git lfs pull; GitHub Actions: actions/checkout with "
        "lfs: true)"
    )


def link_text(path: Path) -> str | None:
    """The text of `path` when it could be a symbolic link checked out as a plain file (see LINK_TEXT_MAX_BYTES): a
    regular file itself (not a link to one), of one hard link and at most LINK_TEXT_MAX_BYTES, holding one line of
    UTF-8 without NUL, line breaks or surrounding blanks; else None. Whether the text names a file in the tree is
    `safety.paths.link_problem`'s to say."""
    head = _small_file(path, LINK_TEXT_MAX_BYTES, os.lstat)
    try:
        text = head.decode("utf-8") if head else None
    except UnicodeDecodeError:
        return None
    if not text or text.strip() != text or any(c in text for c in "\0\n\r"):
        return None
    return text


def _small_file(path: Path, max_bytes: int, stat_of: Callable[[Path], os.stat_result]) -> bytes | None:
    """The bytes of `path` when `stat_of` (os.stat, or os.lstat for the file itself, not one a link leads to) finds a
    regular file of at most `max_bytes` and one hard link, else None: a FIFO is never opened, and a file with a second
    hard link, which may alias one outside the root, is never read here (its reader refuses it)."""
    try:
        st = stat_of(path)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1 or st.st_size > max_bytes:
            return None
        with open(path, "rb") as f:
            return f.read(max_bytes)
    except OSError:
        return None
