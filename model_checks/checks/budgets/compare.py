"""Is a run slower than its baseline? The units are block medians (each a median of consecutive calls): a
single call is too noisy and calls within a run are not independent, but block medians are close to it.

The test is the Mann-Whitney U test with its exact null distribution, and the effect is the Hodges-Lehmann
estimate of the shift of log-latency with the distribution-free confidence interval that inverts the same
test (Moses). Why these: latency has a heavy right tail (preemption, page faults) and no normal shape; ranks
ignore how far an outlier goes, the exact distribution is right for the 5 to 20 blocks we have, and the
interval answers both questions the gate asks: is the change significant (the interval excludes no change)
and is it clearly smaller than the minimum effect (the interval lies inside +-min_effect). Anything else is
"inconclusive": the machine was too noisy to tell. A percentile bootstrap would do similar work but is
randomized and covers poorly with 8 units a side; this is exact and deterministic."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from model_checks.checks.budgets.percentiles import median

MIN_EFFECT = 0.05
CONFIDENCE = 0.95

REGRESSION, IMPROVEMENT, UNCHANGED, INCONCLUSIVE, NOT_COMPARED = (
    "regression",
    "improvement",
    "unchanged",
    "inconclusive",
    "not compared",
)


@lru_cache(maxsize=256)
def u_distribution(n: int, m: int) -> tuple[float, ...]:
    """P(U = u) for u = 0..n*m under the null (no ties): the coefficients of the Gaussian binomial [n+m, n]."""
    poly = [1]
    for i in range(1, n + 1):
        # multiply by (1 - q^(m+i)), then divide by (1 - q^i): exact, the result stays a polynomial
        up = poly + [0] * (m + i)
        for k in range(len(poly) - 1, -1, -1):
            up[k + m + i] -= poly[k]
        out = [0] * (len(up) - i)
        for k in range(len(out)):
            out[k] = up[k] + (out[k - i] if k >= i else 0)
        poly = out
    total = math.comb(n + m, n)
    return tuple(c / total for c in poly[: n * m + 1])


def u_statistic(x: Sequence[float], y: Sequence[float]) -> float:
    """Pairs (x_i, y_j) with x_i > y_j, ties counting one half."""
    return sum((xi > yj) + 0.5 * (xi == yj) for xi in x for yj in y)


def p_greater(x: Sequence[float], y: Sequence[float]) -> float:
    """One-sided exact p-value that x tends to be larger than y."""
    dist = u_distribution(len(x), len(y))
    u = u_statistic(x, y)
    return sum(p for k, p in enumerate(dist) if k >= u - 1e-9)


def interval_rank(n: int, m: int, confidence: float = CONFIDENCE) -> int:
    """k such that [D_(k), D_(nm+1-k)] of the sorted pairwise differences covers the shift with at least
    `confidence`; 0 when n and m are too small for any interval at that level."""
    dist = u_distribution(n, m)
    alpha_half = (1.0 - confidence) / 2
    k, cdf = 0, 0.0
    for p in dist:
        if cdf + p > alpha_half:
            break
        cdf += p
        k += 1
    return k


@dataclass(frozen=True)
class BaselineComparison:
    """A current run against its baseline: a verdict, the estimated ratio current/baseline and its interval."""

    verdict: str
    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    n_current: int = 0
    n_baseline: int = 0
    min_effect: float = MIN_EFFECT
    reason: str = ""
    confidence: float = CONFIDENCE
    calibrated: bool = False  # compared as multiples of the calibration workload's time (see `calibration`)

    def __bool__(self) -> bool:
        """False only for a regression: the one verdict that fails a budget."""
        return self.verdict != REGRESSION

    @property
    def change(self) -> float | None:
        return None if self.ratio is None else self.ratio - 1.0

    def __str__(self) -> str:
        if self.ratio is None:
            return f"{self.verdict}: {self.reason}"
        ci = (
            f"{self.confidence:.0%} CI [{self.low - 1:+.1%}, {self.high - 1:+.1%}]"
            if self.low is not None
            else "no interval"
        )
        return (
            f"{self.verdict}: {self.change:+.1%} vs baseline ({ci}; one-sided Mann-Whitney p={self.p_value:.3g}; "
            f"{self.n_current} vs {self.n_baseline} block medians{', calibrated' if self.calibrated else ''}; minimum effect {self.min_effect:.0%})"
            + (f": {self.reason}" if self.reason else "")
        )

    def as_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "change": self.change,
            "low": self.low,
            "high": self.high,
            "p_value": self.p_value,
            "n_current": self.n_current,
            "n_baseline": self.n_baseline,
            "min_effect": self.min_effect,
            "reason": self.reason,
            "calibrated": self.calibrated,
        }


def compare(
    current: Sequence[float],
    baseline: Sequence[float],
    min_effect: float = MIN_EFFECT,
    confidence: float = CONFIDENCE,
    calibrated: bool = False,
) -> BaselineComparison:
    """Compare per-block medians of a time (larger is slower) against the baseline's."""
    if not current or not baseline or min(current) <= 0 or min(baseline) <= 0:
        return BaselineComparison(INCONCLUSIVE, reason="no positive block medians to compare", min_effect=min_effect)
    x = [math.log(v) for v in current]
    y = [math.log(v) for v in baseline]
    diffs = sorted(a - b for a in x for b in y)
    ratio = math.exp(median(diffs))
    k = interval_rank(len(x), len(y), confidence)
    p = p_greater(x, y)
    common = dict(
        ratio=ratio,
        p_value=p,
        n_current=len(x),
        n_baseline=len(y),
        min_effect=min_effect,
        confidence=confidence,
        calibrated=calibrated,
    )
    if k == 0:
        return BaselineComparison(INCONCLUSIVE, reason=f"too few blocks for a {confidence:.0%} interval", **common)
    low, high = math.exp(diffs[k - 1]), math.exp(diffs[len(diffs) - k])
    common.update(low=low, high=high)
    if ratio - 1.0 > min_effect and low > 1.0:
        return BaselineComparison(REGRESSION, **common)
    if 1.0 - ratio > min_effect and high < 1.0:
        return BaselineComparison(IMPROVEMENT, **common)
    if low >= 1.0 - min_effect and high <= 1.0 + min_effect:
        return BaselineComparison(UNCHANGED, **common)
    return BaselineComparison(
        INCONCLUSIVE, reason=f"the interval reaches past +-{min_effect:.0%}: too noisy to tell", **common
    )


def not_compared(reason: str, min_effect: float = MIN_EFFECT) -> BaselineComparison:
    return BaselineComparison(NOT_COMPARED, reason=reason, min_effect=min_effect)
