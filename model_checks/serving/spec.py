"""`serving:` of a manifest as typed values, each limit with the file that set it."""

from __future__ import annotations

from dataclasses import dataclass, field

from model_checks.manifest import Manifest
from model_checks.manifest.model import Limit

DEFAULTS = {"arrivals": "constant", "requests": 2000, "duration_s": 10.0}
ACHIEVED_SHARE = 0.99  # the open-loop phase must answer at least this share of the declared rate


@dataclass(frozen=True)
class ServingSpec:
    rate: Limit
    arrivals: str
    requests: int
    duration_s: float
    latency_ms: dict[str, Limit] = field(default_factory=dict)
    compare_with: str | None = None
    speedup_vs: Limit | None = None


def serving_spec(manifest: Manifest | None) -> ServingSpec | None:
    """The artifact's `serving:` block (policy.yaml defaults merged), or None when it declares none."""
    if manifest is None or not manifest.get("serving") or manifest.get("serving.rate_per_s") is None:
        return None

    def limit(key: str) -> Limit:
        return Limit(float(manifest.get(f"serving.{key}")), f"{manifest.source_of(f'serving.{key}')} serving.{key}")

    lat = manifest.get("serving.latency_ms") or {}
    return ServingSpec(
        rate=limit("rate_per_s"),
        arrivals=manifest.get("serving.arrivals", DEFAULTS["arrivals"]),
        requests=int(manifest.get("serving.requests", DEFAULTS["requests"])),
        duration_s=float(manifest.get("serving.duration_s", DEFAULTS["duration_s"])),
        latency_ms={p: limit(f"latency_ms.{p}") for p in ("p50", "p95", "p99") if lat.get(p) is not None},
        compare_with=manifest.get("serving.compare_with"),
        speedup_vs=limit("speedup_vs") if manifest.get("serving.speedup_vs") is not None else None,
    )
