"""Latency, throughput and the file hash: the figures a manifest records and the example table shows."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from model_checks.digest import sha256_of
from model_checks.manifest.model import TensorSpec
from model_checks.producers.progress import progress

WARMUP = 5
RUNS = 50


@dataclass(frozen=True)
class Timing:
    """Wall-clock timing of one call repeated: p50/p90 in ms, and items per second at `batch`."""

    p50_ms: float
    p90_ms: float
    batch: int
    runs: int

    @property
    def throughput_per_s(self) -> float:
        return self.batch / (self.p50_ms / 1e3) if self.p50_ms > 0 else float("inf")

    def __str__(self) -> str:
        return f"p50 {self.p50_ms:.3f} ms, p90 {self.p90_ms:.3f} ms at batch {self.batch} ({self.throughput_per_s:.0f}/s, {self.runs} runs)"


def timing(call: Callable[[], Any], batch: int = 1, runs: int = RUNS, warmup: int = WARMUP, desc: str = "measuring") -> Timing:
    """Time `call` `runs` times after `warmup` calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in progress(range(runs), desc, total=runs):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1e3)
    return Timing(float(np.percentile(times, 50)), float(np.percentile(times, 90)), batch, runs)


def runner_timing(runner: Any, specs: Sequence[TensorSpec] | None = None, batch: int = 1, runs: int = RUNS, seed: int = 0) -> Timing:
    """Time a gate Runner (any backend) on seeded inputs at `batch`, generated from `specs` (one per input, in
    order; default: the runner's own interface) and fed under the runner's input names."""
    from model_checks.inputs import generate

    specs = list(specs or runner.inputs)
    if len(specs) != len(runner.inputs):
        raise ValueError(f"{len(specs)} input specs for a model with {len(runner.inputs)} inputs")
    named = [replace(s, name=r.name) for s, r in zip(specs, runner.inputs)]
    feeds = generate(named, batch=batch, seed=seed)
    return timing(lambda: runner.infer(feeds), batch=batch, runs=runs, desc=f"timing {runner.path.name} (batch {batch})")


def sha256(path: Path) -> str:
    """The sha256 the gate's integrity check computes for a single-file model."""
    return sha256_of([path])
