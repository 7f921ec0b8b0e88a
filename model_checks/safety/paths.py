"""Every path an artifact names must stay inside its artifacts root, checked before any library reads it.

Refused: absolute paths, paths that climb out with `..`, symlinks whose target lies outside the root, and
files with more than one hard link (a hard link can alias a file outside the root without a trace in
its path). Refusals raise UnsafePathError with the manifest key that named the path.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterable

from model_checks.core.errors import ArtifactLoadError, ModelChecksError, UnsafePathError
from model_checks.safety.sniff import lfs_problem, link_text
from model_checks.safety.text import printable

MAX_FILE_BYTES = 4 * 1024**3  # a cap on any single file the gate reads


def _is_absolute(text: str) -> bool:
    if ":" not in text and not text.startswith(("/", "\\", "~")):
        return False  # no root and no drive, on either flavour: the common case, without building two paths
    return PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute() or text.startswith("~")


_REAL_ROOTS: dict[tuple[str, str], tuple[tuple[int, int], str]] = {}  # (cwd, root) -> (identity, realpath)
_REAL_ROOTS_MAX = 256


def _real_root(root: Path) -> tuple[str, tuple[int, int] | None]:
    """`os.path.realpath(root)`, worked out once per root rather than once per path (a realpath costs a system
    call per component): kept while `root` still names the same directory (device and inode, one stat), with
    that identity (None where the root cannot be stat'ed). Only the root's own realpath is kept; every path below
    it is resolved afresh on every call, so a link inside the root swapped after a check is judged by where it
    leads now, and a root that has come to name another directory is worked out again."""
    text = os.fspath(root)
    key = ("" if os.path.isabs(text) else os.getcwd(), text)
    try:
        st = os.stat(text)
    except OSError:
        return os.path.realpath(text), None  # not there, or not reachable: nothing to keep
    ident = (st.st_dev, st.st_ino)
    known = _REAL_ROOTS.get(key)
    if known is not None and known[0] == ident:
        return known[1], ident
    real = os.path.realpath(text)
    if len(_REAL_ROOTS) >= _REAL_ROOTS_MAX:
        _REAL_ROOTS.clear()
    _REAL_ROOTS[key] = (ident, real)
    return real, ident


def resolve_inside(root: Path, base: Path, text: str, key: str) -> Path:
    """Resolve `text` (relative to `base`) and prove it stays inside `root`; `key` names it in errors."""
    return Path(_resolve(root, base, text, key)[0])


def regular_file_inside(root: Path, base: Path, text: str, key: str, max_bytes: int = MAX_FILE_BYTES) -> int:
    """`check_regular_file(resolve_inside(root, base, text, key), key, max_bytes)`: the same answers and refusals,
    without a Path, and with the file's own lstat when proving it inside the root took one (it is then no link,
    so its lstat is its stat): discovery proves each manifest so before reading it."""
    real, st = _resolve(root, base, text, key)
    name = os.path.basename(real)
    if st is None:
        try:
            st = os.stat(real)
        except FileNotFoundError:
            raise ArtifactLoadError(f"{key}: {name} does not exist") from None
    return _regular(st, name, key, max_bytes)


def _resolve(root: Path, base: Path, text: str, key: str) -> tuple[str, os.stat_result | None]:
    """resolve_inside's answer as text, with the lstat of its last component where _realpath_below took one."""
    if not text or "\x00" in text:
        raise UnsafePathError(f"{key}: {text!r} is not a usable path")
    if _is_absolute(text):
        raise UnsafePathError(f"{key}: {text!r} is absolute; paths in a manifest are relative to its directory")
    root_text = os.fspath(root)
    root_abs = os.path.normpath(os.path.abspath(root_text))
    lexical = os.path.normpath(os.path.abspath(os.path.join(base, text)))  # absolute: a relative base compares right
    if not _below(lexical, root_abs):
        raise UnsafePathError(f"{key}: {text!r} climbs out of the artifacts root {root}")
    real_root, ident = _real_root(root)
    if root_text == root_abs and ident is not None:  # the usual root (absolute, normalized): see _realpath_below
        real, last = _realpath_below(lexical, root_abs, real_root, ident)
    else:
        real, last = os.path.realpath(lexical), None
    if not _below(real, real_root):
        raise UnsafePathError(f"{key}: {text!r} resolves (through a symlink) outside the artifacts root {root}")
    return real, last


def _realpath_below(
    lexical: str, root_abs: str, real_root: str, ident: tuple[int, int]
) -> tuple[str, os.stat_result | None]:
    """`os.path.realpath(lexical)`, for a normalized absolute path at or below the normalized absolute root
    `root_abs`, whose realpath is `real_root` and which names the directory `ident` (`_real_root`, just now).

    The common case, no link anywhere below the root, costs an lstat a component below the root rather than one
    for every component from `/`. Where the kept `real_root` still names that same directory (one stat), each
    component below it is lstat'ed now and must be there and not be a link; the answer is then `real_root` and
    those components: the root's own directory (the same device and inode) and, below it, no link, which is what
    realpath finds (spelled through the root's kept realpath).
    Anything else (a link below the root, a component missing or not a directory, the kept path no longer naming
    the root) is os.path.realpath's to answer, from `/`. So a link swapped in below the root is still seen as a
    link and judged by where it leads now. Also returned: the last component's lstat (None where none was taken)."""
    if os.sep != "/" or os.altsep:
        return os.path.realpath(lexical), None
    if real_root != root_abs:  # (a root that is its own realpath was stat'ed just now, as `ident`)
        try:
            st = os.stat(real_root)
        except OSError:
            return os.path.realpath(lexical), None
        if (st.st_dev, st.st_ino) != ident:
            return os.path.realpath(lexical), None
    path = real_root.rstrip("/")
    last = None
    for part in lexical[len(root_abs) :].split("/"):
        if not part:
            continue
        path = f"{path}/{part}"
        try:
            last = os.lstat(path)
        except OSError:
            return os.path.realpath(lexical), None
        if stat.S_ISLNK(last.st_mode):
            return os.path.realpath(lexical), None
    return path or "/", last


def _below(path: str, parent: str) -> bool:
    """Whether normalized absolute `path` is `parent` or lies below it (`Path.relative_to`'s test, on text)."""
    return path == parent or path.startswith(parent if parent.endswith(os.sep) else parent + os.sep)


def leads_out(root: Path, path: str | Path) -> bool:
    """Whether `path`, with every link in it followed, lies outside `root` (for a link met while walking a folder:
    discovery's and the look-ahead's, which do not follow one that leads out)."""
    return not _below(os.path.realpath(path), _real_root(root)[0])


def proven_files(root: Path, files: Iterable[Path], key: str) -> list[Path]:
    """Files a worker named (it parsed a stranger's model to find them), held to the rules of a manifest's paths
    before this process reads one: inside `root`, no symlink out, a regular file under the cap, no hard-link alias."""
    checked = []
    for f in files:
        text = os.path.relpath(f, root) if Path(f).is_absolute() else str(f)
        path = resolve_inside(root, root, text, key)
        check_regular_file(path, key)
        checked.append(path)
    return checked


def check_regular_file(
    path: Path, key: str, max_bytes: int = MAX_FILE_BYTES, missing: type[ModelChecksError] = ArtifactLoadError
) -> int:
    """A regular file of bounded size with no hard-link aliases; returns its size. `missing`: the error a file that
    is not there raises (a model's, or a data file's: DataFileError)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise missing(f"{key}: {path.name} does not exist") from None
    return _regular(st, path.name, key, max_bytes)


def _regular(st: os.stat_result, name: str, key: str, max_bytes: int) -> int:
    if not stat.S_ISREG(st.st_mode):  # the stat just taken (Path.is_file would take another)
        raise UnsafePathError(f"{key}: {name} is not a regular file")
    if st.st_nlink > 1:
        raise UnsafePathError(
            f"{key}: {name} has {st.st_nlink} hard links; a hard link can alias a file outside the root"
        )
    if st.st_size > max_bytes:
        raise UnsafePathError(f"{key}: {name} is {st.st_size} bytes, over the cap of {max_bytes} bytes")
    return st.st_size


def spelled_otherwise(base: Path, text: str) -> tuple[Path, str, str] | None:
    """The first component of the relative path `text` (from `base`) that its directory holds only under another
    spelling of the same name, another case or another Unicode normalization: (the directory, the name as written,
    the name on disk). A case-insensitive filesystem (macOS', Windows') opens such a path all the same, a
    case-sensitive one (Linux, most CI) finds no such file: a verdict that turned on it would be the machine's. None
    when every component is spelled as on disk, or one is not there under any spelling (its check says so), or a
    directory cannot be listed. A directory listing a component (`_listing`), no more: `..` is taken as written."""
    folder = base
    for part in os.path.normpath(text).split(os.sep):
        if part in (".", ""):
            continue
        if part == "..":
            folder = folder.parent
            continue
        names = _listing(folder)
        if names is None:
            return None
        if part not in names:
            folded = _folded(part)
            other = next((n for n in sorted(names) if _folded(n) == folded), None)
            return (folder, part, other) if other is not None else None
        folder = folder / part
    return None


_LISTINGS: dict[str, tuple[tuple[int, int, int], frozenset[str]]] = {}  # folder -> (identity, names)
_LISTINGS_MAX = 256  # folders kept at once
_LISTING_KEPT_NAMES = 10_000


def _listing(folder: Path) -> frozenset[str] | None:
    """The names in `folder` (None where it cannot be listed), listed again only when it is another directory or its
    entries changed (its device, inode or modification time): every artifact's manifest check, and the look-ahead's
    before it, lists its folder, and a reference path lists the root, which holds every artifact's folder."""
    key = os.fspath(folder)
    try:
        st = os.stat(key)
        ident = (st.st_dev, st.st_ino, st.st_mtime_ns)
        known = _LISTINGS.get(key)
        if known is not None and known[0] == ident:
            return known[1]
        names = frozenset(os.listdir(key))
    except OSError:
        return None
    if len(names) > _LISTING_KEPT_NAMES:  # a huge folder is listed each time rather than held
        return names
    if len(_LISTINGS) >= _LISTINGS_MAX:
        _LISTINGS.clear()
    _LISTINGS[key] = (ident, names)
    return names


def _folded(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def spelling_problem(root: Path, folder: Path, named: str, on_disk: str, there: bool) -> str:
    """What is wrong with a path whose component `named` is `on_disk` in `folder` (spelled_otherwise), to follow
    "<key>: <path> ": whether this filesystem opened it anyway (`there`), and why another would not."""
    where = printable(os.path.relpath(folder, root).replace(os.sep, "/"))
    where = printable(root.name) if where == "." else where
    if unicodedata.normalize("NFC", named) == unicodedata.normalize("NFC", on_disk):  # they look alike: code points
        named, on_disk, kind = ascii(named), ascii(on_disk), "in another Unicode normalization"
    else:
        named, on_disk, kind = repr(named), repr(on_disk), "in another case"
    if there:
        return (
            f"is spelled {on_disk} on disk, not {named} ({kind}): this filesystem opens it all the same, one that tells "
            f"them apart (Linux's, most CI's) finds no {named} in {where}/"
        )
    return (
        f"does not exist: {where}/ holds {on_disk}, not {named} ({kind}), and this filesystem tells them apart "
        "(macOS' or Windows' would have opened it)"
    )


def checkout_problem(root: Path, base: Path, text: str, path: Path, respell: str) -> str | None:
    """What the checkout or the filesystem makes of a file named `text` (from `base`), resolved to `path`, to follow
    "<key>: <text> ": spelled otherwise than on disk (`respell` says where to spell it as it is), or a stand-in the
    checkout left in its place (`stand_in_problem`). None when neither: its readers' own checks follow."""
    if (spelled := spelled_otherwise(base, text)) is not None:
        return f"{spelling_problem(root, *spelled, there=path.exists())}; {respell}"
    return stand_in_problem(root, path)


def stand_in_problem(root: Path, path: Path) -> str | None:
    """What to say of `path` (after "<key>: <name> ") when the checkout left a stand-in where the file should be, so
    that the same commit is the file on one machine and a few bytes of text on another: a Git LFS pointer whose
    content was not fetched, or a symbolic link git wrote as a file holding its target (`link_problem`)."""
    return lfs_problem(path) or link_problem(root, path)


def link_problem(root: Path, path: Path) -> str | None:
    """What to say of `path` when it holds nothing but the path of a file or folder that is there in the tree (from
    its own folder, as a link leads, and inside `root` with every link in it followed): how git checks out a symbolic
    link where it makes none (sniff.LINK_TEXT_MAX_BYTES). None otherwise; a text naming nothing there, or a place
    outside the root, is left to the file's readers (nothing outside the root is looked at here)."""
    text = link_text(path)
    if text is None or _is_absolute(text):
        return None
    target = os.path.normpath(os.path.join(path.parent, text))
    if not _below(os.path.abspath(target), os.path.abspath(root)) or leads_out(root, target):
        return None
    if not os.path.exists(target):
        return None
    kind = "folder" if os.path.isdir(target) else "file"
    return (
        f"holds only the text {printable(repr(text))}, the path of the {kind} it should be a symbolic link to: this "
        "checkout wrote the link as a plain file, as git does where it makes no links (core.symlinks=false: Windows "
        "without Developer Mode, a filesystem without links). Check it out with links (git config core.symlinks "
        "true, then git checkout -- <path>), or commit the file itself in its place"
    )
