"""What a worker process may use: memory, and seconds per request."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MEMORY_MB = 8192
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Limits:
    """`memory_mb` caps the worker's private writable memory (RLIMIT_DATA); `timeout_s` bounds one request
    (a load, an inference) before the worker is killed."""

    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: float = DEFAULT_TIMEOUT_S

    def describe(self) -> str:
        return f"memory limit {self.memory_mb} MiB, timeout {self.timeout_s:g} s per request"
