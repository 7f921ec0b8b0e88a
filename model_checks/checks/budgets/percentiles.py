"""Percentiles from raw samples, and how many samples a percentile needs before it means anything."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

# The statistics a budget may gate, as the quantile each one is (None: the mean).
STATISTICS: dict[str, float | None] = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "mean": None}
# A quantile estimate needs this many samples beyond it, with this probability (see `min_samples`).
BEYOND = 2
CONFIDENCE = 0.99


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) by linear interpolation between order statistics: numpy's default
    ("linear", Hyndman & Fan type 7), so figures match `np.percentile(samples, 100 * q)`."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q!r} is not in [0, 1]")
    s = sorted(samples)
    h = (len(s) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (h - lo) * (s[hi] - s[lo])


def median(samples: Sequence[float]) -> float:
    return percentile(samples, 0.5)


def min_samples(q: float, beyond: int = BEYOND, confidence: float = CONFIDENCE) -> int:
    """The fewest samples for which, with probability `confidence`, at least `beyond` of them lie above the
    true q-quantile. Then the estimate is not the sample maximum (a single outlier), and the second-largest
    sample is a distribution-free upper confidence bound for the quantile. With the defaults this gives 64
    for p90 and 662 for p99."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile {q!r} is not in (0, 1)")
    tail = 1.0 - q
    n = beyond
    while True:
        below = sum(math.comb(n, i) * tail**i * (1.0 - tail) ** (n - i) for i in range(beyond))
        if 1.0 - below >= confidence:
            return n
        n += 1


def rounds_for(statistics: Sequence[str], floor: int = 0) -> int:
    """Samples needed for every gated statistic (the mean is held to the median's rule), at least `floor`."""
    need = [min_samples(STATISTICS[s] or 0.5) for s in statistics]
    return max([floor, *need])


@dataclass(frozen=True)
class Percentiles:
    """Latency figures of one measurement, in milliseconds, computed from the raw samples."""

    n: int
    p50: float
    p90: float
    p95: float
    p99: float
    mean: float
    min: float
    max: float

    @classmethod
    def of_ns(cls, samples_ns: Sequence[float]) -> Percentiles:
        ms = [s / 1e6 for s in samples_ns]
        return cls(
            n=len(ms),
            p50=percentile(ms, 0.5),
            p90=percentile(ms, 0.9),
            p95=percentile(ms, 0.95),
            p99=percentile(ms, 0.99),
            mean=math.fsum(ms) / len(ms),
            min=min(ms),
            max=max(ms),
        )

    def get(self, statistic: str) -> float:
        if statistic not in STATISTICS:
            raise KeyError(f"unknown statistic {statistic!r}; known: {', '.join(STATISTICS)}")
        return float(getattr(self, statistic))

    def trustworthy(self, statistic: str) -> bool:
        """Whether there are enough samples for this statistic (see `min_samples`)."""
        q = STATISTICS[statistic]
        return self.n >= min_samples(q or 0.5)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def __str__(self) -> str:
        return f"p50 {self.p50:.3f} ms, p90 {self.p90:.3f}, p95 {self.p95:.3f}, p99 {self.p99:.3f}, mean {self.mean:.3f} (n={self.n})"
