"""Latency, throughput and the file hash: the figures a manifest records and the example table shows."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from model_checks.manifest.model import TensorSpec
from model_checks.producers.progress import progress
from model_checks.safety.digest import sha256_of

WARMUP = 5
RUNS = 200  # p50 of fewer calls moved by 30% between packagings of the same Keras model (measured: README)


@dataclass(frozen=True)
class Timing:
    """Wall-clock timing of one call repeated: p50/p90 in ms, and items per second at `batch`."""

    p50_ms: float
    p90_ms: float
    batch: int
    runs: int
    calibration_us: float | None = None  # the calibration workload's p50, measured between the blocks of runs

    @property
    def throughput_per_s(self) -> float:
        return self.batch / (self.p50_ms / 1e3) if self.p50_ms > 0 else float("inf")

    def __str__(self) -> str:
        return f"p50 {self.p50_ms:.3f} ms, p90 {self.p90_ms:.3f} ms at batch {self.batch} ({self.throughput_per_s:.0f}/s, {self.runs} runs)"


CALIBRATION_BLOCKS = 5


def timing(
    call: Callable[[], Any],
    batch: int = 1,
    runs: int = RUNS,
    warmup: int = WARMUP,
    desc: str = "measuring",
    calibration: Any = None,
) -> Timing:
    """Time `call` `runs` times after `warmup` calls; with a `Calibration`, a burst of it before every fifth of the
    runs and after the last (interleaved, as the gate's latency test does), whose median is `calibration_us`."""
    for _ in range(warmup):
        call()
    times = []
    every = max(1, runs // CALIBRATION_BLOCKS)
    for i in progress(range(runs), desc, total=runs):
        if calibration is not None and i % every == 0:
            calibration.burst()
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1e3)
    cal_us = None
    if calibration is not None:
        calibration.burst()
        cal_us = float(np.median(calibration.bursts)) / 1e3
    return Timing(float(np.percentile(times, 50)), float(np.percentile(times, 90)), batch, runs, cal_us)


def target_timing(
    path: Path,
    fmt: str,
    root: Path,
    specs: Sequence[TensorSpec],
    batch: int = 1,
    threads: int | None = 1,
    runs: int = RUNS,
    seed: int = 0,
) -> Timing:
    """Time the model as the gate's budget tests do (`backends.open_target` on the CPU: ONNX Runtime, TorchScript
    through torch, Keras as a traced graph), after a warm-up until the latency settles, on seeded inputs at `batch`
    generated from `specs` (one per input, in order). So the `latency_ms` a manifest records is the figure that
    test_latency[<id>-cpu] measures and compares with the claim."""
    from model_checks.backends import family, load_runtime, open_target
    from model_checks.checks.budgets.measure import warm_up
    from model_checks.core.inputs import generate

    if family(fmt) == "tensorflow" and threads and "tensorflow" in sys.modules:
        # TensorFlow sizes its thread pools once, when it starts (here it has: training, conversion): time the model
        # in a fresh process that starts it with `threads`, as the gate's budget test does
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(target_timing, path, fmt, root, list(specs), batch, threads, runs, seed).result()
    from model_checks.checks.budgets.calibration import Calibration

    load_runtime(fmt)
    target = open_target(path, fmt, root, "cpu", threads, trust_code=True)  # the producer packages a model it trusts
    try:
        target.prepare(generate(list(specs), batch=batch, seed=seed))
        warm_up(target.call)
        return timing(
            target.call,
            batch=batch,
            runs=runs,
            warmup=0,
            desc=f"timing {path.name} (batch {batch})",
            calibration=Calibration(threads),
        )
    finally:
        target.close()


def sha256(path: Path) -> str:
    """The sha256 the gate's integrity check computes for a single-file model."""
    return sha256_of([path])
