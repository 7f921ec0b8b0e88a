"""What a worker process may use: memory, seconds per request, and CPU spent waiting for the next one."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MEMORY_MB = 8192
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Limits:
    """`memory_mb` caps the worker's private writable memory (RLIMIT_DATA); `timeout_s` bounds one request
    (a load, an inference) before the worker is killed; `linger_s` is how long the worker polls its pipe for the
    next request after answering one, before it sleeps (0: it sleeps at once; a service sets it, see serving.service)."""

    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: float = DEFAULT_TIMEOUT_S
    linger_s: float = 0.0

    def describe(self) -> str:
        return f"memory limit {self.memory_mb} MiB, timeout {self.timeout_s:g} s per request"
