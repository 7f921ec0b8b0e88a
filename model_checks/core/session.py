"""The gate's run state: the roots, the discovered artifacts, the model pool, and running a check on an artifact.
Library code that works without pytest; the plugin creates it and turns each result into a pytest outcome
(`plugin/verdict.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

from model_checks import checks
from model_checks.backends.base import Names, declared_names
from model_checks.checks.context import CheckContext
from model_checks.core.artifact import Artifact
from model_checks.core.discovery import discover
from model_checks.core.errors import ModelChecksError, runtime_error_text
from model_checks.core.lazy import import_numpy
from model_checks.core.pool import ModelPool
from model_checks.core.references import TestData
from model_checks.core.results import CheckResult
from model_checks.isolation.limits import Limits

# The check that reads an artifact's reference test data; the plugin reads it ahead for that check alone.
TESTDATA_READER = "equivalence"


@dataclass
class GateSession:
    roots: list[Path]
    trust_code: bool = False
    isolation: Limits | None = None  # None: models run in this process
    rootdir: Path | None = None  # junit properties name directories relative to it
    localize: bool = True  # failing ONNX equivalence adds where the two models diverge
    serving_caps: Any = None  # serving.caps.ServingCaps: what the gate allows the serving check (None: the defaults)
    pool: ModelPool = field(init=False)
    _artifacts: list[Artifact] | None = field(default=None, init=False)
    _by_dir: dict[Path, Artifact] | None = field(default=None, init=False)
    _models_of: dict[str, list[Path]] = field(default_factory=dict, init=False)
    _blocked: dict[str, str] = field(
        default_factory=dict, init=False
    )  # artifact id -> the first check that could not have it
    _testdata: dict[str, TestData] = field(default_factory=dict, init=False)  # see keep_testdata
    _passed_first: dict[str, CheckResult] = field(default_factory=dict, init=False)  # see keep_first

    def __post_init__(self) -> None:
        self.pool = ModelPool(trust_code=self.trust_code, isolation=self.isolation)

    @property
    def artifacts(self) -> list[Artifact]:
        if self._artifacts is None:
            self._artifacts = discover(self.roots)
            self.pool.declare(partial(_names_by_model, self._artifacts))  # resolved when a model is first asked for
            self.pool.declare_hashed(partial(_hashed_models, self._artifacts))
        return self._artifacts

    def by_dir(self, d: Path) -> Artifact | None:
        if self._by_dir is None:
            self._by_dir = {a.dir: a for a in self.artifacts}
        return self._by_dir.get(d)

    def run_check(
        self,
        name: str,
        artifact: Artifact,
        run: Callable[[CheckContext], CheckResult] | None = None,
        testdata: TestData | None = None,
    ) -> CheckResult:
        """Run one check (`run`, else the built-in `name`); a ModelChecksError (unsafe path, unreadable file,
        refused format) is a failure. Whether the failure stops the artifact's later checks is the check's own
        declaration (`Check.blocking`), never the kind of error alone. `testdata`: its reference's, read ahead."""
        import_numpy()  # the checks' arrays: imported here as lazy.import_numpy says, whichever module asks first
        ctx = CheckContext(artifact, self.pool, self.localize, self.serving_caps, testdata=testdata)
        declared = checks.registry().get(name)
        blocking = declared.blocking if declared is not None else "never"
        try:
            result = (run or checks.get(name).run)(ctx)
        except ModelChecksError as e:
            if blocking == "failure" or (blocking == "model" and e.model_unavailable):
                self._blocked.setdefault(artifact.id, f"test_{name}[{artifact.id}]")
            return CheckResult(
                name, False, f"{name}: {artifact.id}: {e.what}", tuple(f"  {line}" for line in str(e).splitlines())
            )
        except Exception as e:  # a check's own bug, or a library's surprise: still a message, never a traceback
            if blocking == "failure":
                self._blocked.setdefault(artifact.id, f"test_{name}[{artifact.id}]")
            return CheckResult(
                name,
                False,
                f"{name}: {artifact.id}: the check could not finish",
                tuple(f"  {line}" for line in runtime_error_text(e).splitlines())
                + ("  this is a fault of the gate or of a library it uses; please report it with this message",),
            )
        if not result and blocking == "failure":
            self._blocked.setdefault(artifact.id, f"test_{name}[{artifact.id}]")
        return result

    def result(
        self, name: str, artifact: Artifact, run: Callable[[CheckContext], CheckResult] | None = None
    ) -> CheckResult:
        """`run_check`, except for an artifact whose model an earlier check could not have (refused, missing,
        unloadable, an invalid manifest): then a skip naming that check, so the refusal is read once."""
        testdata = self._testdata.pop(artifact.id, None) if name == TESTDATA_READER else None
        if name == checks.FIRST and run is None and (passed := self._passed_first.pop(artifact.id, None)) is not None:
            return passed
        first = self._blocked.get(artifact.id)
        if first and name != checks.FIRST:
            return CheckResult.skip(name, f"not run: {first} failed")
        return self.run_check(name, artifact, run, testdata if run is None else None)

    def keep_first(self, artifact: Artifact, result: CheckResult) -> None:
        """The artifact's first check (checks.FIRST), run ahead and passed (the plugin's look-ahead runs it to learn
        whether the artifact's model may be started on): its own test takes this result rather than run it again."""
        if result:
            self._passed_first[artifact.id] = result

    def kept_first(self, artifact: Artifact) -> CheckResult | None:
        """The passing result `keep_first` holds for the artifact, if any (left for its test to take)."""
        return self._passed_first.get(artifact.id)

    def keep_testdata(self, artifact: Artifact, data: TestData) -> None:
        """The artifact's reference test data, read ahead: its equivalence check (TESTDATA_READER) takes it."""
        self._testdata[artifact.id] = data

    def kept_testdata(self, artifact: Artifact) -> TestData | None:
        """The test data `keep_testdata` holds for the artifact, if any (left for its check to take)."""
        return self._testdata.get(artifact.id)

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


def _hashed_models(artifacts: list[Artifact]) -> set[Path]:
    """The model files whose manifests declare a sha256 (see ModelPool.hash_ahead)."""
    found = set()
    for a in artifacts:
        if a.manifest is not None and a.manifest.get("sha256"):
            try:
                found.add(a.model_path)
            except ModelChecksError:
                continue
    return found


def _names_by_model(artifacts: list[Artifact]) -> dict[Path, Names]:
    """The names manifests declare for each model file; a model two manifests name differently gets none (its
    tensors are then named by position), since guessing which one is meant would be wrong half the time."""
    found: dict[Path, set] = {}
    for a in artifacts:
        if a.manifest is None:
            continue
        try:
            path = a.model_path
        except ModelChecksError:
            continue
        found.setdefault(path, set()).add(declared_names(a.manifest))
    return {p: next(iter(n)) for p, n in found.items() if len(n) == 1 and None not in n}
