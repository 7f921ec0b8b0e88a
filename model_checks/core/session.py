"""The gate's run state: options, the discovered artifacts, the model pool, and turning a CheckResult
into a pytest outcome. Library code; the plugin only creates it and hands items to it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from model_checks import checks
from model_checks.core.artifact import Artifact
from model_checks.checks.context import CheckContext
from model_checks.core.discovery import discover
from model_checks.core.errors import ArtifactLoadError, MissingDependencyError, ModelChecksError, UnsafePathError, UntrustedFormatError, runtime_error_text
from model_checks.isolation.limits import Limits
from model_checks.core.pool import ModelPool
from model_checks.safety.text import printable
from model_checks.core.results import CheckResult

PROPERTY = "model_checks"
# A check failing with one of these says the model cannot be had at all: the artifact's later checks are not run.
BLOCKING = (UntrustedFormatError, ArtifactLoadError, UnsafePathError, MissingDependencyError)


@dataclass
class GateSession:
    roots: list[Path]
    trust_code: bool = False
    isolation: Limits | None = None  # None: models run in this process
    rootdir: Path | None = None  # junit properties name directories relative to it
    pool: ModelPool = field(init=False)
    _artifacts: list[Artifact] | None = field(default=None, init=False)
    _by_dir: dict[Path, Artifact] | None = field(default=None, init=False)
    _models_of: dict[str, list[Path]] = field(default_factory=dict, init=False)
    _blocked: dict[str, str] = field(default_factory=dict, init=False)  # artifact id -> the first check that could not have it

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
            return self._manifest(artifact)
        ctx = CheckContext(artifact, self.pool)
        try:
            return (run or checks.module(name).run)(ctx)
        except ModelChecksError as e:
            if isinstance(e, BLOCKING):
                self._blocked.setdefault(artifact.id, f"test_{name}[{artifact.id}]")
            return CheckResult(name, False, f"{name}: {artifact.id}: {e.what}", tuple(f"  {line}" for line in str(e).splitlines()))
        except Exception as e:  # a check's own bug, or a library's surprise: still a message, never a traceback
            return CheckResult(name, False, f"{name}: {artifact.id}: the check could not finish",
                               tuple(f"  {line}" for line in runtime_error_text(e).splitlines())
                               + ("  this is a fault of the gate or of a library it uses; please report it with this message",))

    def _manifest(self, artifact: Artifact) -> CheckResult:
        """The schema, and that every file the manifest's `file` and `reference.path` name is there."""
        if artifact.error:
            return CheckResult("manifest", False, f"manifest: {artifact.rel_dir}/metadata.yaml is invalid", tuple("  " + line for line in artifact.error.splitlines()))
        problems = []
        for key in ("file", "reference.path"):
            try:
                p = artifact.path(key)
            except ModelChecksError as e:
                problems.append(str(e))
                continue
            if p is not None and not (p.exists() or p.is_symlink()):
                problems.append(f"{key}: {artifact.manifest.get(key)} does not exist in {artifact.rel_dir}/ "
                                f"(fix the path in {artifact.rel_dir}/metadata.yaml or add the file)")
        if problems:
            self._blocked.setdefault(artifact.id, f"test_manifest[{artifact.id}]")
            return CheckResult.from_problems("manifest", f"{artifact.rel_dir}/metadata.yaml", problems, "")
        return CheckResult("manifest", True, f"manifest: {artifact.id} follows schema 1")

    def verdict(self, name: str, artifact: Artifact, item: pytest.Item | None = None,
                run: Callable[[CheckContext], CheckResult] | None = None, benchmark: object = None) -> CheckResult:
        """Run the check and let pytest decide: skip, pass, or fail with the check's own message. A check of an
        artifact whose model an earlier check could not have (refused, missing, unloadable) is not run: it
        skips naming that check, so the refusal is read once."""
        __tracebackhide__ = True
        first = self._blocked.get(artifact.id)
        if first and name != "manifest":
            if benchmark is not None:
                benchmark.skipped = True  # pytest-benchmark would warn that its fixture went unused
            result = CheckResult.skip(name, f"not run: {first} failed")
        else:
            result = self.run_check(name, artifact, run)
        record(item, artifact, result, self.rootdir)
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


FACTS = ("artifact", "dir", "check", "ok", "skipped", "format")


def record(item: pytest.Item | None, artifact: Artifact, result: CheckResult, rootdir: Path | None = None) -> None:
    """Attach figures to the running test, so reports see them, also from xdist workers and in junit.xml: one
    property per fact and figure (`model_checks.check`, `model_checks.rel_l2`), the directory relative to the rootdir."""
    if item is None:
        return
    where = artifact.dir
    if rootdir is not None and artifact.dir.is_relative_to(rootdir):
        where = artifact.dir.relative_to(rootdir)
    facts = {"artifact": artifact.id, "dir": where.as_posix(), "check": result.check, "ok": result.ok, "skipped": result.skipped,
             "format": artifact.format, **{k: v for k, v in result.figures.items() if k not in FACTS}}
    item.user_properties.extend((f"{PROPERTY}.{k}", _property_value(v)) for k, v in facts.items() if v is not None)


def _property_value(v: object) -> object:
    """A junit property value: numbers as they are, text escaped (a directory name or a skip reason from a pull
    request can hold a newline or an escape sequence), anything else as JSON."""
    if isinstance(v, (bool, int, float)):
        return v
    return printable(v if isinstance(v, str) else json.dumps(v, default=str))


def read_record(user_properties: list[tuple[str, object]]) -> dict | None:
    """The facts `record` attached to a test report, its figures under "figures"; None for a test of no artifact.
    A test that ran several checks keeps the last one's."""
    facts: dict = {}
    for key, value in user_properties:
        if key.startswith(PROPERTY + "."):
            name = key[len(PROPERTY) + 1:]
            if name == "artifact":
                facts = {}
            facts[name] = value
    if not facts:
        return None
    return {**{k: facts.get(k) for k in FACTS}, "figures": {k: v for k, v in facts.items() if k not in FACTS}}
