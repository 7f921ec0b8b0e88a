"""The budgets an artifact declares (`budgets.cpu` / `budgets.gpu`), each limit with where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

from model_checks.manifest import Manifest
from model_checks.manifest.model import Limit

DEVICES = ("cpu", "gpu")
# check name -> the budget key that makes it apply
CHECK_KEYS = {"latency": "latency_ms", "throughput": "throughput_per_s", "speedup": "speedup_vs_reference"}


@dataclass(frozen=True)
class DeviceBudget:
    """`budgets.<device>`: latency limits by statistic (ms), throughput (items/s), speedup against the reference."""

    device: str
    where: str
    batch_size: int = 1
    threads: int | None = None
    latency_ms: dict[str, Limit] = field(default_factory=dict)
    throughput_per_s: Limit | None = None
    speedup_vs_reference: Limit | None = None
    latency_claim_ms: Limit | None = None  # the manifest's top-level `latency_ms` (cpu only): checked by the latency test

    def declares(self, check: str) -> bool:
        key = CHECK_KEYS[check]
        value = getattr(self, key)
        if key == "latency_ms":
            return bool(value) or self.latency_claim_ms is not None
        return value is not None


def device_budget(manifest: Manifest, device: str, where: str = "metadata.yaml") -> DeviceBudget | None:
    """`budgets.<device>`; on the cpu also the `latency_ms` claim, which alone is enough for a latency test."""
    raw = manifest.get(f"budgets.{device}") or {}
    claim = manifest.get("latency_ms") if device == "cpu" else None
    if not raw and claim is None:
        return None
    prefix = f"budgets.{device}"

    def limit(key: str) -> Limit | None:
        value = manifest.get(f"{prefix}.{key}")
        return None if value is None else Limit(float(value), f"{manifest.source_of(f'{prefix}.{key}')} {prefix}.{key}")

    latency = {s: lim for s in (raw.get("latency_ms") or {}) if (lim := limit(f"latency_ms.{s}")) is not None}
    return DeviceBudget(device=device, where=where, batch_size=int(raw.get("batch_size") or 1), threads=raw.get("threads"),
                        latency_ms=latency, throughput_per_s=limit("throughput_per_s"), speedup_vs_reference=limit("speedup_vs_reference"),
                        latency_claim_ms=None if claim is None else Limit(float(claim), where))


def devices_for(manifest: Manifest | None, check: str) -> list[str]:
    """The devices whose budget declares `check` (latency, throughput or speedup)."""
    if manifest is None:
        return []
    return [d for d in DEVICES if (b := device_budget(manifest, d)) is not None and b.declares(check)]


def budget_checks(manifest: Manifest | None) -> list[str]:
    """The budget checks an artifact declares, for collection: an artifact without budgets gets none."""
    return [c for c in CHECK_KEYS if devices_for(manifest, c)]
