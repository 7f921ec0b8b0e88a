"""Budget policies: each holds one limit and where it came from; `.fails(figures)` returns a message or None."""

from __future__ import annotations

from dataclasses import dataclass

from model_checks.checks.budgets.percentiles import Percentiles
from model_checks.manifest.model import Limit


@dataclass(frozen=True)
class LatencyBudget:
    """`latency_ms.<statistic>`: the statistic of the steady-state samples must not exceed the limit."""

    statistic: str
    limit: Limit

    def fails(self, figures: Percentiles) -> str | None:
        value = figures.get(self.statistic)
        if value <= self.limit.value:
            return None
        over = value / self.limit.value - 1.0
        return (f"latency {self.statistic} {value:.3f} ms > {self.limit.value:g} ms ({over:+.1%} over the limit set in "
                f"{self.limit.source}, n={figures.n})")

    def __str__(self) -> str:
        return f"{self.statistic} <= {self.limit.value:g} ms"


@dataclass(frozen=True)
class ThroughputBudget:
    """`throughput_per_s`: items per second at the declared batch size (batch / median call time) must reach the limit."""

    limit: Limit
    batch_size: int

    def fails(self, items_per_s: float) -> str | None:
        if items_per_s >= self.limit.value:
            return None
        short = 1.0 - items_per_s / self.limit.value
        return (f"throughput {items_per_s:.1f}/s at batch {self.batch_size} < {self.limit.value:g}/s "
                f"({short:.1%} short of the limit set in {self.limit.source})")

    def __str__(self) -> str:
        return f"throughput >= {self.limit.value:g}/s at batch {self.batch_size}"


@dataclass(frozen=True)
class SpeedupBudget:
    """`speedup_vs_reference`: median(reference) / median(artifact), measured interleaved, must reach the limit."""

    limit: Limit

    def fails(self, speedup: float) -> str | None:
        if speedup >= self.limit.value:
            return None
        return f"speedup {speedup:.3f}x over the reference < {self.limit.value:g}x (set in {self.limit.source})"

    def __str__(self) -> str:
        return f"speedup >= {self.limit.value:g}x"


CLAIM_FACTOR = 3.0  # how far a recorded latency may sit from this machine's: another machine, not another model


@dataclass(frozen=True)
class LatencyClaim:
    """The manifest's `latency_ms` claim (p50 at batch 1, recorded when packaged) against the p50 measured here.
    Machines differ, so the claim holds within `factor` either way; beyond that the claim is stale or untrue."""

    claim: Limit
    factor: float = CLAIM_FACTOR

    def fails(self, figures: Percentiles) -> str | None:
        measured, claimed = figures.p50, self.claim.value
        ratio = measured / claimed if claimed > 0 else float("inf")
        if not self.factor or 1 / self.factor <= ratio <= self.factor:
            return None
        how, fix = ((f"{ratio:.1f}x slower than", "re-record it when packaging, or find what slowed the model") if ratio > 1
                    else (f"{1 / ratio:.1f}x faster than", "re-record it when packaging"))
        return (f"latency_ms: {self.claim.source} claims p50 {claimed:g} ms at batch 1; measured p50 {measured:.3f} ms here, {how} "
                f"the claim, beyond the {self.factor:g}x a different machine explains ({fix})")

    def __str__(self) -> str:
        return f"claimed p50 {self.claim.value:g} ms within {self.factor:g}x"
