"""What the gate allows the serving check, whatever a manifest asks: a manifest is a stranger's text, so its
`serving.rate_per_s`, `requests` and `duration_s` are requests the gate's caps decide (the options
--model-checks-serving-max-*), responses are capped in size, and the whole check, services included, ends
within --model-checks-timeout."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the plugin's options import this module: it stays free of the manifest and the service
    from model_checks.serving.spec import ServingSpec

DEFAULT_MAX_RATE = 5000.0
DEFAULT_MAX_REQUESTS = 20000
DEFAULT_MAX_DURATION_S = 60.0
DEFAULT_MAX_RESPONSE_MB = 64.0
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class ServingCaps:
    """The gate's limits on test_serving (from its options): what a manifest asks is checked against them."""

    max_rate: float = DEFAULT_MAX_RATE
    max_requests: int = DEFAULT_MAX_REQUESTS
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    max_response_mb: float = DEFAULT_MAX_RESPONSE_MB
    timeout_s: float = DEFAULT_TIMEOUT_S  # the whole check: starting services, the functional part and the load

    @property
    def max_response_bytes(self) -> int:
        return int(self.max_response_mb * 1024 * 1024)

    def bounded(self, spec: ServingSpec) -> tuple[ServingSpec | None, list[str], list[str]]:
        """(the spec the gate runs, notes on what it lowered, problems); the spec is None when the rate asked for
        is beyond the cap: a claim the gate will not load-test is not one it can pass."""
        notes: list[str] = []
        if spec.rate.value > self.max_rate:
            return (
                None,
                notes,
                [
                    f"serving.rate_per_s {spec.rate.value:g} from {spec.rate.source} exceeds the gate's cap of "
                    f"{self.max_rate:g} requests/s (--model-checks-serving-max-rate): not load-tested. Lower "
                    "it, or raise the cap in the gate's own configuration if this machine can offer it"
                ],
            )
        requests, duration = spec.requests, spec.duration_s
        if requests > self.max_requests:
            notes.append(
                f"  serving.requests {requests} lowered to the gate's cap of {self.max_requests} "
                "(--model-checks-serving-max-requests)"
            )
            requests = self.max_requests
        if duration > self.max_duration_s:
            notes.append(
                f"  serving.duration_s {duration:g} lowered to the gate's cap of {self.max_duration_s:g} s "
                "(--model-checks-serving-max-duration)"
            )
            duration = self.max_duration_s
        return replace(spec, requests=requests, duration_s=duration), notes, []


class Deadline:
    """The serving check's share of --model-checks-timeout, from its start."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.end
