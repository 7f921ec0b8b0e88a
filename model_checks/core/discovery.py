"""Finding artifacts under roots. Reads manifests only: no model is loaded, no framework imported."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from model_checks.core.artifact import Artifact
from model_checks.core.errors import ManifestError, UnsafePathError
from model_checks.manifest import load_manifest, load_policy
from model_checks.safety.paths import check_regular_file, resolve_inside

MANIFEST = "metadata.yaml"
POLICY = "policy.yaml"


def _walk(root: Path):  # type: ignore[no-untyped-def]
    """Directories holding a metadata.yaml, in a stable order; hidden folders and symlinks are not entered.

    Yields (directory, why it is refused or None). A directory link whose target lies inside the root is
    skipped silently (the walk reaches its target anyway); one that leads out is refused, not ignored, so
    an artifact cannot pass unchecked by living behind a link."""
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for d in dirnames:
            link = os.path.join(dirpath, d)
            if os.path.islink(link) and os.path.commonpath([real_root, os.path.realpath(link)]) != real_root:
                yield Path(link), f"{d} is a symlink to a directory outside the artifacts root; links are not followed (copy the artifact in instead)"
        if MANIFEST in filenames:
            yield Path(dirpath), None


def _unreadable(root: Path, d: Path, name: str, display: str) -> str | None:
    """Why `d/name` may not be read: a link out of the root, a hard link, not a regular file."""
    try:
        check_regular_file(resolve_inside(root, d, name, display), display)
    except UnsafePathError as e:
        return str(e)
    return None


def discover(roots: list[Path]) -> list[Artifact]:
    """Every artifact under `roots`; an invalid manifest yields an Artifact with `error` set, never a crash."""
    found: list[Artifact] = []
    for root in roots:
        root = Path(os.path.normpath(root.absolute()))
        policy_display = f"{root.name}/{POLICY}"
        policy, policy_error = {}, None
        if os.path.lexists(root / POLICY):
            policy_error = _unreadable(root, root, POLICY, policy_display)
        if policy_error is None:
            try:
                policy = load_policy(root / POLICY, policy_display)
            except ManifestError as e:
                policy_error = str(e)
        for d, refused in _walk(root):
            rel = d.relative_to(root).as_posix()
            display = f"{root.name}/{rel}/{MANIFEST}" if rel != "." else f"{root.name}/{MANIFEST}"
            refused = refused or policy_error or _unreadable(root, d, MANIFEST, display)
            if refused:
                found.append(Artifact(id=f"invalid:{rel}", root=root, dir=d, manifest=None, error=refused))
                continue
            try:
                m = load_manifest(d / MANIFEST, display, policy, policy_display)
                found.append(Artifact(id=m.id, root=root, dir=d, manifest=m))
            except ManifestError as e:
                found.append(Artifact(id=f"invalid:{rel}", root=root, dir=d, manifest=None, error=str(e)))
    return _break_ties(found)


def _break_ties(artifacts: list[Artifact]) -> list[Artifact]:
    counts = Counter(a.id for a in artifacts)
    out = []
    for a in artifacts:
        if counts[a.id] > 1:
            a = Artifact(id=f"{a.id}:{a.rel_dir}", root=a.root, dir=a.dir, manifest=a.manifest, error=a.error)
        out.append(a)
    return out
