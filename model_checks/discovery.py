"""Finding artifacts under roots. Reads manifests only: no model is loaded, no framework imported."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from model_checks.artifact import Artifact
from model_checks.errors import ManifestError
from model_checks.manifest import load_manifest, load_policy

MANIFEST = "metadata.yaml"
POLICY = "policy.yaml"


def _walk(root: Path):  # type: ignore[no-untyped-def]
    """Directories holding a metadata.yaml, in a stable order; hidden folders and symlinks are not entered."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        if MANIFEST in filenames:
            yield Path(dirpath)


def discover(roots: list[Path]) -> list[Artifact]:
    """Every artifact under `roots`; an invalid manifest yields an Artifact with `error` set, never a crash."""
    found: list[Artifact] = []
    for root in roots:
        root = Path(os.path.normpath(root.absolute()))
        policy_display = f"{root.name}/{POLICY}"
        try:
            policy = load_policy(root / POLICY, policy_display)
            policy_error = None
        except ManifestError as e:
            policy, policy_error = {}, str(e)
        for d in _walk(root):
            rel = d.relative_to(root).as_posix()
            display = f"{root.name}/{rel}/{MANIFEST}" if rel != "." else f"{root.name}/{MANIFEST}"
            if policy_error:
                found.append(Artifact(id=f"invalid:{rel}", root=root, dir=d, manifest=None, error=policy_error))
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
