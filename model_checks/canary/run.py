"""Running a canary over artifact roots, and bisecting the releases between two versions."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from model_checks.canary.compare import applies, compare, versions
from model_checks.canary.install import Candidate, entries, install
from model_checks.canary.report import CanaryReport
from model_checks.core.discovery import discover
from model_checks.core.errors import ModelChecksError
from model_checks.core.pool import ModelPool
from model_checks.isolation.limits import Limits


def canary(
    candidate: Candidate,
    roots: list[Path],
    cache: Path,
    offline: bool = False,
    trust_code: bool = False,
    limits: Limits | None = None,
    exact: bool = False,
) -> CanaryReport:
    """Every artifact the candidate's package runs, under the pinned runtime and the candidate, side by side."""
    directory = install(candidate, cache, offline)
    arts = [a for a in discover(roots) if applies(a, candidate.package)]
    limits = limits or Limits()
    with ModelPool(trust_code, limits) as pinned, ModelPool(trust_code, limits, first=entries(directory)) as tried:
        if not arts:
            return CanaryReport(candidate.package, "?", candidate.version, ())
        have, _ = versions(candidate, pinned, tried, arts[0].model_path)
        results = []
        for art in arts:
            results.append(compare(art, candidate, pinned, tried, exact))
            pinned.release(art.model_path)
            tried.release(art.model_path)
    return CanaryReport(candidate.package, have, candidate.version, tuple(results))


def bisect(
    package: str,
    first: str,
    last: str,
    releases: list[str],
    probe: Callable[[Candidate], CanaryReport],
    say: Callable[[str], None] = print,
) -> tuple[str, str, bool] | None:
    """The two neighbouring releases between `first` and `last` (inclusive) where the canary's answer flips: (last
    safe, first drifting, False) going up, or (last drifting, first safe, True) when the older end drifts and the
    newer does not. None when both ends give the same answer. Assumes one flip in the span; `probe` runs a canary on
    one release."""
    from packaging.version import Version

    lo, hi = Version(first), Version(last)
    span = [v for v in releases if lo <= Version(v) <= hi]
    if len(span) < 2:
        raise ModelChecksError(
            f"fewer than two {package} releases from {first} to {last} on the index ({', '.join(span) or 'none'})"
        )
    seen: dict[str, bool] = {}

    def safe(v: str) -> bool:
        if v not in seen:
            report = probe(Candidate(package, v))
            seen[v] = report.safe
            say(f"  {package}=={v}: {report.verdict_line()}")
        return seen[v]

    if safe(span[0]) == safe(span[-1]):
        return None
    a, b = 0, len(span) - 1  # safe(span[a]) != safe(span[b]) throughout
    while b - a > 1:
        mid = (a + b) // 2
        if safe(span[mid]) == safe(span[a]):
            a = mid
        else:
            b = mid
    return span[a], span[b], safe(span[b])
