"""An artifact: a directory with a model file and its metadata.yaml, found under an artifacts root."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from model_checks.manifest import Manifest
from model_checks.safety.paths import resolve_inside
from model_checks.safety.text import printable


@dataclass(frozen=True)
class Artifact:
    """One artifact. `manifest` is None when metadata.yaml is invalid; `error` then says why."""

    id: str
    root: Path
    dir: Path
    manifest: Manifest | None
    error: str | None = None
    # paths already resolved and proven inside the root, by manifest key: collection and every check ask again
    _resolved: dict[str, Path] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @cached_property  # fields never change (frozen); worked out once, not for every path it names
    def rel_dir(self) -> str:
        """The directory under its root, as shown to people (escaped: a directory name may hold anything)."""
        text, prefix = os.fspath(self.dir), os.path.join(self.root, "")
        if text.startswith(prefix):  # the usual case, as text (what relative_to gives for paths below the root)
            rel = text[len(prefix) :].replace(os.sep, "/")
        else:
            rel = self.dir.relative_to(self.root).as_posix()
        return printable(rel if rel != "." else self.root.name)

    @cached_property
    def manifest_path(self) -> Path:
        return self.dir / "metadata.yaml"

    @property
    def format(self) -> str | None:
        return self.manifest.format if self.manifest else None

    def path(self, key: str) -> Path | None:
        """The resolved path a manifest key names (`file`, `reference.path`, `samples`, `eval_data`)."""
        assert self.manifest is not None
        if key in self._resolved:
            return self._resolved[key]
        text = self.manifest.get(key)
        if text is None:
            return None
        path = self._resolved[key] = resolve_inside(self.root, self.dir, text, f"{self.rel_dir}/metadata.yaml: {key}")
        return path

    @property
    def model_path(self) -> Path:
        path = self.path("file")
        assert path is not None
        return path

    def __str__(self) -> str:
        return self.id
