"""Finding artifacts under roots. Reads manifests only: no model is loaded, no framework imported."""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from functools import partial
from pathlib import Path

from model_checks.core.artifact import Artifact
from model_checks.core.errors import ModelChecksError
from model_checks.manifest import load_manifest, load_policy
from model_checks.safety.paths import leads_out, regular_file_inside
from model_checks.safety.text import printable

MANIFEST = "metadata.yaml"
POLICY = "policy.yaml"
GITMODULES_MAX_BYTES = 1024**2
UNFETCHED_SUBMODULE = (
    "{name} is a git submodule this checkout has not fetched (an empty folder that {gitmodules} names): the artifacts "
    "in it are not here to be checked, on this machine only. Fetch it where the gate runs (git submodule update "
    "--init; GitHub Actions: actions/checkout with submodules: true), or leave it out of the gated roots"
)

UNLISTED = (
    "{name} is a folder the gate cannot list ({error}): any artifacts in it are not gated, on this machine only. "
    "Make it readable{longer}, or keep it out of the gated roots"
)
NOT_TEXT = (
    "the path {name} is not valid UTF-8 text (the file system holds bytes no encoding reads as text): runtimes that "
    "take a path as text (onnxruntime, TensorFlow) cannot open the model from it, and reports cannot name it. Rename "
    "the folder"
)
LONGEST_ID = 200  # an invalid artifact's id is its folder's path, shortened beyond this (a path may run to 4 KiB)


def unfetched_submodules(root: Path) -> dict[str, str]:
    """The submodules of the repository holding `root` that lie at or below it and that this checkout has not fetched
    (normalized absolute path -> the .gitmodules that names it, as shown): git leaves an empty folder where such a
    submodule goes (a clone without --recurse-submodules; CI's checkout by default), and the artifacts in it would
    otherwise be missing from the gate without a word. Read from the nearest .gitmodules beside a .git above `root`
    (a regular file of at most GITMODULES_MAX_BYTES, not a link, which git itself refuses; a file git cannot read is
    read as naming none); empty when there is none."""
    import configparser

    top = next((p for p in (root, *root.parents) if os.path.lexists(p / ".git")), None)
    if top is None:
        return {}
    gitmodules = top / ".gitmodules"
    try:
        st = os.lstat(gitmodules)
        if not stat.S_ISREG(st.st_mode) or st.st_size > GITMODULES_MAX_BYTES:
            return {}
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.read_string(gitmodules.read_text(encoding="utf-8", errors="replace"))
    except (OSError, configparser.Error):
        return {}
    shown = printable(os.path.relpath(gitmodules, root.parent).replace(os.sep, "/"))
    below = os.path.join(root, "")
    found = {}
    for section in parser.sections():
        where = parser.get(section, "path", fallback="").strip().strip('"')
        if not section.startswith("submodule") or not where or os.path.isabs(where):
            continue
        path = os.path.normpath(os.path.join(top, where))
        if (path == os.fspath(root) or path.startswith(below)) and _empty_folder(path):
            found[path] = shown
    return found


def _empty_folder(path: str) -> bool:
    if os.path.islink(path) or not os.path.isdir(path):
        return False
    try:
        with os.scandir(path) as it:
            return next(it, None) is None
    except OSError:
        return False


def _walk(root: Path, listing: list[tuple[str, list[str]]] | None = None, unfetched: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """Directories holding a metadata.yaml, in a stable order; hidden folders and symlinks are not entered.

    Yields (directory, why it is refused or None). A directory link whose target lies inside the root is
    skipped silently (the walk reaches its target anyway); one that leads out is refused, not ignored, so
    an artifact cannot pass unchecked by living behind a link; so is a submodule the checkout has not fetched
    (`unfetched`: `unfetched_submodules`). `listing`, when given, gets (directory, its file
    names sorted) for every directory walked, in the same order (`roots.python_files` reads it: one walk a root).

    The order and the answers are os.walk's (followlinks=False, sub-directories sorted, top-down), taken from one
    scandir of each directory: a sub-directory is a link or not as its entry says, not by one more lstat each."""
    stack = [os.fspath(root)]
    while stack:
        dirpath = stack.pop()
        try:
            with os.scandir(dirpath) as it:
                entries = list(it)
        except OSError as e:
            # os.walk would pass it by; its artifacts would then be missing without a word (an unreadable folder, a
            # path past the system's limit), so it is refused like an unfetched submodule
            if dirpath != os.fspath(root):
                longer = (
                    " (or shorten its path: it is past this system's limit)" if e.errno == errno.ENAMETOOLONG else ""
                )
                error = printable(e.strerror or type(e).__name__)
                yield (
                    Path(dirpath),
                    UNLISTED.format(name=printable(os.path.basename(dirpath)), error=error, longer=longer),
                )
            continue
        dirs, files = [], []
        for e in entries:
            try:
                is_dir = e.is_dir()
            except OSError:
                is_dir = False
            if not is_dir:
                files.append(e.name)
            elif not e.name.startswith(".") and e.name != "__pycache__":
                dirs.append(e)
        dirs.sort(key=lambda e: e.name)
        if listing is not None:
            files.sort()
            listing.append((dirpath, files))
        below = []
        for e in dirs:
            if unfetched and e.path in unfetched:
                yield Path(e.path), UNFETCHED_SUBMODULE.format(name=printable(e.name), gitmodules=unfetched[e.path])
                continue
            if not e.is_symlink():
                below.append(e.path)
                continue
            if leads_out(root, e.path):
                yield (
                    Path(e.path),
                    f"{e.name} is a symlink to a directory outside the artifacts root; links are not followed (copy the artifact in instead)",
                )
        if MANIFEST in files:
            yield Path(dirpath), None
        stack.extend(reversed(below))


_LISTINGS: dict[str, list[tuple[str, list[str]]]] = {}  # root -> what the last discovery's walk of it listed


def listing(root: Path) -> list[tuple[str, list[str]]]:
    """(directory, its file names sorted) for every directory below `root` that discovery walks: the listing the
    last discovery of `root` (the same absolute, normalized path) made, handed over once; else a fresh walk."""
    known = _LISTINGS.pop(os.fspath(root), None)
    if known is not None:
        return known
    out: list[tuple[str, list[str]]] = []
    for _ in _walk(root, out):
        pass
    return out


def _unreadable(root: Path, d: Path, name: str, display: str) -> str | None:
    """Why `d/name` may not be read: a link out of the root or to nothing, a hard link, not a regular file (a
    named pipe would block the reader)."""
    try:
        regular_file_inside(root, d, name, display)
    except ModelChecksError as e:
        return str(e)
    return None


def _read(read, display: str):  # type: ignore[no-untyped-def]
    """`read()`, or why not: no input may end the session, so even an error of ours that escaped the loader's
    own checks becomes this artifact's failure (named as ours, to be reported)."""
    try:
        return read(), None
    except ModelChecksError as e:
        return None, str(e)
    except (OSError, ValueError) as e:
        return None, f"{display}: cannot be read ({type(e).__name__}: {printable(str(e))})"
    except Exception as e:  # noqa: BLE001 - a bug of ours, but one manifest must not end the session
        return (
            None,
            f"{display}: internal error of model-checks while reading it ({type(e).__name__}: {printable(str(e))}); please report it",
        )


def _is_text(path: str) -> bool:
    """Whether a path's bytes are UTF-8 (os.fsdecode keeps other bytes as surrogates, which no runtime opens)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shortened(rel: str) -> str:
    """A folder's path as an id: itself up to LONGEST_ID characters, else its start, its length and a digest."""
    if len(rel) <= LONGEST_ID:
        return rel
    import hashlib

    return f"{rel[: LONGEST_ID - 40]}...[{len(rel)} characters, {hashlib.sha256(rel.encode()).hexdigest()[:8]}]"


def discover(roots: list[Path]) -> list[Artifact]:
    """Every artifact under `roots`; an invalid manifest yields an Artifact with `error` set, never a crash."""
    found: list[Artifact] = []
    for root in roots:
        root = Path(os.path.normpath(root.absolute()))
        policy_display = printable(f"{root.name}/{POLICY}")
        policy, policy_error = {}, None
        if os.path.lexists(root / POLICY):
            policy_error = _unreadable(root, root, POLICY, policy_display)
        if policy_error is None:
            policy, policy_error = _read(partial(load_policy, root / POLICY, policy_display), policy_display)
        prefix = os.path.join(root, "")  # the root with one separator after it: below it, a directory is prefix + rel
        shown_root = printable(root.name)
        walked: list[tuple[str, list[str]]] = []
        unfetched = unfetched_submodules(root)
        if os.fspath(root) in unfetched:  # the root itself: nothing below it to walk
            why = UNFETCHED_SUBMODULE.format(name=shown_root, gitmodules=unfetched[os.fspath(root)])
            found.append(Artifact(id=f"invalid:{shown_root}", root=root, dir=root, manifest=None, error=why))
        for d, refused in _walk(root, walked, unfetched):
            text = os.fspath(d)
            rel = (
                text[len(prefix) :].replace(os.sep, "/") if text.startswith(prefix) else d.relative_to(root).as_posix()
            )
            if not refused and not _is_text(text):
                refused = NOT_TEXT.format(name=printable(rel))
            rel = printable(rel or ".")  # a directory name is shown, never trusted to be text
            display = f"{shown_root}/{rel}/{MANIFEST}" if rel != "." else f"{shown_root}/{MANIFEST}"
            refused = refused or policy_error or _unreadable(root, d, MANIFEST, display)
            m = None
            if not refused:
                path = os.path.join(text, MANIFEST)  # text: the loader only opens it (a Path costs more than the open)
                m, refused = _read(partial(load_manifest, path, display, policy or {}, policy_display), display)
            if m is None:
                found.append(Artifact(id=f"invalid:{_shortened(rel)}", root=root, dir=d, manifest=None, error=refused))
            else:
                found.append(Artifact(id=printable(m.id), root=root, dir=d, manifest=m))
        if len(_LISTINGS) >= 64:
            _LISTINGS.clear()
        _LISTINGS[os.fspath(root)] = walked
    return _break_ties(found)


def _break_ties(artifacts: list[Artifact]) -> list[Artifact]:
    counts = Counter(a.id for a in artifacts)
    out = []
    for a in artifacts:
        if counts[a.id] > 1:
            a = Artifact(id=f"{a.id}:{a.rel_dir}", root=a.root, dir=a.dir, manifest=a.manifest, error=a.error)
        out.append(a)
    return out
