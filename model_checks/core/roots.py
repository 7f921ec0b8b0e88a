"""Artifact roots as a run sees them: which are gated, what a root holds that pytest must never import,
and why a root holds no artifact. Library code: the plugin asks, this module answers without pytest."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Iterable

from model_checks.core.discovery import MANIFEST, listing

# Names a user may have meant for the manifest: each is reported when a root holds no artifact.
NEAR_MISSES = ("metadata.yml", "Metadata.yaml", "metadata.yaml.txt", "metadata.json")


def inside(path: Path, parent: Path) -> bool:
    """Whether `path` is `parent` or lies below it (lexically; both absolute)."""
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


def relative(path: Path, base: Path) -> str:
    """`path` as posix text relative to `base` where it lies below it, else as it is."""
    return path.relative_to(base).as_posix() if inside(path, base) else path.as_posix()


def unique(roots: Iterable[Path]) -> list[Path]:
    """Absolute, normalized roots, each once, in order; a root inside another is dropped (it is gated anyway)."""
    out: list[Path] = []
    for r in (Path(os.path.normpath(Path(r).absolute())) for r in roots):
        if not any(inside(r, o) for o in out):
            out = [o for o in out if not inside(o, r)] + [r]
    return out


def python_files(root: Path, patterns: Iterable[str]) -> list[Path]:
    """Files under `root` pytest would import if it collected there: conftest.py and `python_files` matches."""
    pats = ["conftest.py", *patterns]
    # fnmatch.fnmatch(f, p) for any p, as one expression compiled once (a tree holds thousands of files)
    match = re.compile("|".join(fnmatch.translate(os.path.normcase(p)) for p in pats)).match
    return [Path(d) / f for d, files in listing(root) for f in files if match(os.path.normcase(f))]


def near_misses(root: Path, limit: int = 5) -> list[Path]:
    """Files that look like a misnamed manifest (`metadata.yml`), the first `limit` of them."""
    found = [Path(d) / f for d, files in listing(root) for f in files if f in NEAR_MISSES]
    return found[:limit]


def display(path: Path, base: Path) -> str:
    """`path` relative to `base` where it lies below it, else as is; a folder ends with '/'."""
    text = (
        path.relative_to(base).as_posix()
        if inside(path, base) and path != base
        else (path.name if path == base else str(path))
    )
    return text + "/" if path.is_dir() and not text.endswith("/") else text


def no_artifact_message(root: Path, base: Path) -> str:
    """Why a root gates nothing, with what was looked for and the near misses found."""
    lines = [
        f"model-checks: no artifact under {display(root, base)}: looked for a {MANIFEST} in every folder below it "
        "(hidden folders and symlinks are not entered)"
    ]
    misses = near_misses(root)
    if misses:
        names = ", ".join(display(p, base) for p in misses)
        lines.append(f"  found {names}: the manifest must be named {MANIFEST} exactly (rename it)")
    lines.append(
        f"  an artifact is a folder with a model file and a {MANIFEST}; or point --model-checks / model_checks_roots at the folder that holds them"
    )
    return "\n".join(lines)
