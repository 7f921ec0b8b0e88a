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


def canary(candidate: Candidate, roots: list[Path], cache: Path, offline: bool = False, trust_code: bool = False,
           limits: Limits | None = None, exact: bool = False) -> CanaryReport:
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


def bisect(package: str, first: str, last: str, releases: list[str], probe: Callable[[Candidate], CanaryReport],
           say: Callable[[str], None] = print) -> tuple[str | None, str | None]:
    """(last safe release, first unsafe release) between `first` and `last` (inclusive), assuming drift, once it
    appears, stays. (None, None) when `last` is safe; `probe` runs a canary on one release."""
    from packaging.version import Version

    lo, hi = Version(first), Version(last)
    span = [v for v in releases if lo <= Version(v) <= hi]
    if not span:
        raise ModelChecksError(f"no {package} release between {first} and {last} on the index ({len(releases)} known)")
    seen: dict[str, bool] = {}

    def safe(v: str) -> bool:
        if v not in seen:
            report = probe(Candidate(package, v))
            seen[v] = report.safe
            say(f"  {package}=={v}: {'safe' if report.safe else 'NOT SAFE'}: {report.verdict_line()}")
        return seen[v]

    if safe(span[-1]):
        return span[-1], None
    if not safe(span[0]):
        return None, span[0]
    a, b = 0, len(span) - 1  # span[a] safe, span[b] not
    while b - a > 1:
        mid = (a + b) // 2
        if safe(span[mid]):
            a = mid
        else:
            b = mid
    return span[a], span[b]
