"""The gate's run state: options, the discovered artifacts, the model pool, and turning a CheckResult
into a pytest outcome. Library code; the plugin only creates it and hands items to it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from model_checks import checks
from model_checks.artifact import Artifact
from model_checks.checks.context import CheckContext
from model_checks.discovery import discover
from model_checks.errors import ModelChecksError
from model_checks.isolation.limits import Limits
from model_checks.pool import ModelPool
from model_checks.results import CheckResult

PROPERTY = "model_checks"


@dataclass
class GateSession:
    roots: list[Path]
    trust_code: bool = False
    isolation: Limits | None = None  # None: models run in this process
    localize: bool = True
    pool: ModelPool = field(init=False)
    _artifacts: list[Artifact] | None = field(default=None, init=False)
    _by_dir: dict[Path, Artifact] | None = field(default=None, init=False)
    _models_of: dict[str, list[Path]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.pool = ModelPool(trust_code=self.trust_code, isolation=self.isolation)

    @property
    def artifacts(self) -> list[Artifact]:
        if self._artifacts is None:
            self._artifacts = discover(self.roots)
        return self._artifacts

    def by_dir(self, d: Path) -> Artifact | None:
        if self._by_dir is None:
            self._by_dir = {a.dir: a for a in self.artifacts}
        return self._by_dir.get(d)

    def run_check(self, name: str, artifact: Artifact, run: Callable[[CheckContext], CheckResult] | None = None) -> CheckResult:
        """Run one check (`run`, else the built-in `name`); a ModelChecksError (unsafe path, unreadable file,
        refused format) is a failure."""
        if name == "manifest":
            if artifact.error:
                return CheckResult(name, False, f"manifest: {artifact.rel_dir}/metadata.yaml is invalid", tuple("  " + line for line in artifact.error.splitlines()))
            return CheckResult(name, True, f"manifest: {artifact.id} follows schema 1")
        ctx = CheckContext(artifact, self.pool, self.localize)
        try:
            return (run or checks.module(name).run)(ctx)
        except ModelChecksError as e:
            return CheckResult(name, False, f"{name}: {artifact.id}: {e.what}", tuple(f"  {line}" for line in str(e).splitlines()))

    def verdict(self, name: str, artifact: Artifact, item: pytest.Item | None = None,
                run: Callable[[CheckContext], CheckResult] | None = None) -> CheckResult:
        """Run the check and let pytest decide: skip, pass, or fail with the check's own message."""
        __tracebackhide__ = True
        result = self.run_check(name, artifact, run)
        record(item, artifact, result)
        if result.skipped:  # reported at the item's location: the artifact's metadata.yaml
            raise pytest.skip.Exception(result.skipped, _use_item_location=True)
        if not result:
            pytest.fail(str(result), pytrace=False)
        return result

    def models_of(self, artifact: Artifact) -> list[Path]:
        """The model files a check of this artifact may load (its own and its reference)."""
        if artifact.manifest is None:
            return []
        if artifact.id in self._models_of:
            return self._models_of[artifact.id]
        paths = self._models_of.setdefault(artifact.id, [])
        for key in ("file", "reference.path"):
            try:
                p = artifact.path(key)
            except ModelChecksError:
                continue
            if p is not None:
                paths.append(p)
        return paths


def record(item: pytest.Item | None, artifact: Artifact, result: CheckResult) -> None:
    """Attach figures to the running test, so reports see them, also from xdist workers and in junit.xml."""
    if item is None:
        return
    payload = {"artifact": artifact.id, "dir": str(artifact.dir), "check": result.check, "ok": result.ok,
               "skipped": result.skipped, "format": artifact.format, "figures": result.figures}
    item.user_properties.append((PROPERTY, json.dumps(payload, default=str)))
