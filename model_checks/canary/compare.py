"""One artifact under the pinned runtime and under a candidate: outputs compared directly, top-1 flips, the
equivalence verdict on each side, and p50 latency timed in alternating rounds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_checks.canary.install import Candidate
from model_checks.core.artifact import Artifact
from model_checks.core.errors import ModelChecksError
from model_checks.core.metrics import compare_outputs
from model_checks.core.pool import ModelPool

ROUNDS, CALLS = 5, 10  # latency: 5 rounds a side, alternating, 10 calls each


@dataclass(frozen=True)
class ArtifactResult:
    """One artifact's canary. `drift` says how the candidate's outputs break the artifact's tolerance against the
    pinned runtime's; a changed verdict or a drift makes the bump unsafe for it."""

    id: str
    cases: int = 0
    rel_l2: float | None = None
    max_abs: float | None = None
    identical: bool = False
    top1_flips: int = 0
    rows: int = 0
    p50_pinned_ms: float | None = None
    p50_candidate_ms: float | None = None
    verdict_pinned: bool | None = None  # equivalence on each side; None where it does not apply
    verdict_candidate: bool | None = None
    drift: str | None = None
    error: str | None = None

    @property
    def verdict_changes(self) -> bool:
        return self.verdict_pinned != self.verdict_candidate

    @property
    def safe(self) -> bool:
        return self.error is None and self.drift is None and not self.verdict_changes

    def why(self) -> str:
        """Why the bump is not safe for this artifact (empty when it is)."""
        if self.error:
            return self.error
        parts = []
        if self.verdict_changes:
            say = {True: "passes", False: "fails", None: "does not apply"}
            parts.append(
                f"equivalence {say[self.verdict_pinned]} on the pinned runtime, "
                f"{say[self.verdict_candidate]} on the candidate"
            )
        if self.drift:
            parts.append(self.drift)
        return "; ".join(parts)


def _runtime_of(art: Artifact, package: str) -> str | None | bool:
    """The `runtime` of the artifact's item a candidate of `package` affects: None for its own format's item, the
    runtime's name for an item of `runtimes:`, False when the package runs nothing of this artifact."""
    m = art.manifest
    if m is None:
        return False
    if package == "onnxruntime":
        return None if m.format == "onnx" else False
    if package == "openvino":
        if m.format == "openvino":
            return None
        return "openvino" if m.format == "onnx" and "openvino" in m.runtimes else False
    return False


def applies(art: Artifact, package: str) -> bool:
    return _runtime_of(art, package) is not False


def _drift(art: Artifact, got: list[dict], pinned: list[dict]) -> str | None:
    """The first output whose candidate values break the artifact's tolerance against the pinned runtime's."""
    assert art.manifest is not None
    for i, (g, p) in enumerate(zip(got, pinned, strict=True)):
        c = compare_outputs(g, p, art.manifest.tolerance.for_output)
        if c:
            continue
        if c.problems:
            return f"case {i}: {c.problems[0]}"
        o = next(o for o in c.outputs if not o.ok)
        if o.problem:
            return f"case {i}: output '{o.name}': {o.problem}"
        r = next(r for r in o.rows if not r.ok)
        op = "<" if r.metric == "top1_agreement" else ">"
        lim = r.limit
        assert lim is not None  # a row that fails has a limit
        return (
            f"output '{o.name}' {r.metric} {r.value:.3g} {op} {lim.value:.3g} ({lim.source}) "
            "against the pinned runtime's outputs"
        )
    return None


def _flips(got: list[dict], pinned: list[dict]) -> tuple[int, int]:
    """(rows whose argmax differs, rows compared) over the float outputs of two or more dimensions."""
    flips = rows = 0
    for g, p in zip(got, pinned, strict=True):
        for name, a in g.items():
            b = p.get(name)
            if b is None or a.shape != b.shape or a.dtype.kind != "f" or a.ndim < 2 or a.shape[-1] < 2:
                continue
            x, y = a.reshape(-1, a.shape[-1]).argmax(-1), b.reshape(-1, b.shape[-1]).argmax(-1)
            flips += int((x != y).sum())
            rows += x.size
    return flips, rows


def _diff(got: list[dict], pinned: list[dict]) -> tuple[float | None, float | None, bool]:
    rel = mx = None
    same = True
    for g, p in zip(got, pinned, strict=True):
        for name, a in g.items():
            b = p.get(name)
            if b is None or a.shape != b.shape:
                same = False
                continue
            same = same and bool(np.array_equal(a, b))
            if a.dtype.kind == "f" and a.size:
                d = a.astype(np.float64) - b.astype(np.float64)
                n = float(np.linalg.norm(b.astype(np.float64)))
                r = float(np.linalg.norm(d)) / n if n else float(np.linalg.norm(d))
                rel, mx = max(rel or 0.0, r), max(mx or 0.0, float(np.abs(d).max()))
    return rel, mx, same


def _side(art: Artifact, pool: ModelPool, runtime: str | None, backend: str) -> tuple[list[dict], bool | None, list]:
    """The artifact's outputs on every case, its equivalence verdict, and the cases, through `pool`'s workers."""
    from model_checks import checks
    from model_checks.checks.context import CheckContext

    ctx = CheckContext(art, pool, localize=False, runtime=runtime)
    cases = ctx.cases()
    runner = ctx.runner() if runtime is None else pool.runner(ctx.model_path, backend, art.root)
    outs = [runner.infer(c.inputs) for c in cases]
    result = checks.module("equivalence").run(dataclasses.replace(ctx))
    return outs, (None if result.skipped else bool(result)), cases


def compare(
    art: Artifact, candidate: Candidate, pinned: ModelPool, tried: ModelPool, exact: bool = False
) -> ArtifactResult:
    """The artifact under both pools (the pinned runtime's workers, and workers that import the candidate first).
    `exact`: any change of an output is a drift, not only one beyond the artifact's tolerance."""
    from model_checks.canary.probe import time_calls

    runtime = _runtime_of(art, candidate.package)
    assert runtime is not False
    backend = candidate.backend
    try:
        p_out, p_ok, cases = _side(art, pinned, runtime, backend)
        c_out, c_ok, _ = _side(art, tried, runtime, backend)
    except ModelChecksError as e:
        return ArtifactResult(art.id, error=f"could not run: {e.what}")
    rel, mx, same = _diff(c_out, p_out)
    flips, rows = _flips(c_out, p_out)
    path = art.model_path
    feeds = cases[0].inputs
    times: dict[str, list[float]] = {"pinned": [], "candidate": []}
    try:
        for _ in range(ROUNDS):  # alternating, so a slow patch of the machine falls on both sides alike
            for side, pool in (("pinned", pinned), ("candidate", tried)):
                times[side] += pool.run_isolated(backend, path, time_calls, backend, path, art.root, feeds, CALLS)
    except ModelChecksError:
        times = {"pinned": [], "candidate": []}
    p50 = {k: float(np.median(v)) * 1e3 if v else None for k, v in times.items()}
    return ArtifactResult(
        art.id,
        len(cases),
        rel,
        mx,
        same,
        flips,
        rows,
        p50["pinned"],
        p50["candidate"],
        p_ok,
        c_ok,
        None if same else _drift(art, c_out, p_out) or (_changed(rel, mx) if exact else None),
    )


def _changed(rel: float | None, mx: float | None) -> str:
    return (
        f"outputs are not bit-identical to the pinned runtime's (max rel_l2 {rel or 0:.3g}, max abs {mx or 0:.3g}; "
        "--exact counts any change)"
    )


def versions(candidate: Candidate, pinned: ModelPool, tried: ModelPool, path: Path) -> tuple[str, str]:
    """(pinned version, candidate version) as the two workers import them; refuses a candidate that did not load."""
    from model_checks.canary.probe import runtime_version

    have = pinned.run_isolated(candidate.backend, path, runtime_version, candidate.package)
    try:
        got = tried.run_isolated(candidate.backend, path, runtime_version, candidate.package)
    except ModelChecksError as e:
        raise ModelChecksError(
            f"{candidate.name} cannot be imported beside this environment's packages (a release built "
            f"for another numpy, or for another Python): {e}"
        ) from None
    if got != candidate.version:
        raise ModelChecksError(
            f"the candidate worker imported {candidate.package} {got}, not {candidate.version}: "
            "its cached directory is incomplete; remove it and run again"
        )
    return have, got
