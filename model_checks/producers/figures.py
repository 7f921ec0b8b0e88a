"""Latency, throughput and the file hash: the figures a manifest records and the example table shows."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from model_checks.manifest.model import TensorSpec
from model_checks.producers.progress import progress
from model_checks.safety.digest import sha256_of

WARMUP = 5
RUNS = 200  # p50 of fewer calls moved by 30% between packagings of the same Keras model (measured: README)
# A TensorFlow model's p50 depends on the process it runs in: the same Keras model read from 0.17 to 0.40 ms from
# one fresh process to the next on one machine (0.18 in some, 0.30 in others), so one process's figure is a draw.
# The producer times it in this many fresh processes, one after another, and records the median one.
TF_PROCESSES = 3


@dataclass(frozen=True)
class Timing:
    """Wall-clock timing of one call repeated: p50/p90 in ms, and items per second at `batch`."""

    p50_ms: float
    p90_ms: float
    batch: int
    runs: int
    calibration_us: float | None = None  # the calibration workload's p50, measured between the blocks of runs
    processes: int = 1  # fresh processes timed; the figures are those of the one with the median p50

    @property
    def throughput_per_s(self) -> float:
        return self.batch / (self.p50_ms / 1e3) if self.p50_ms > 0 else float("inf")

    def __str__(self) -> str:
        where = f", the median of {self.processes} processes" if self.processes > 1 else ""
        return f"p50 {self.p50_ms:.3f} ms, p90 {self.p90_ms:.3f} ms at batch {self.batch} ({self.throughput_per_s:.0f}/s, {self.runs} runs{where})"


def median_timing(timings: Sequence[Timing]) -> Timing:
    """The timing whose p50 is the median of `timings` (its p90 and calibration with it, measured together)."""
    middle = sorted(timings, key=lambda t: t.p50_ms)[len(timings) // 2]
    return replace(middle, processes=len(timings))


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
    fresh: bool = True,
) -> Timing:
    """Time the model as the gate's budget tests do (`backends.open_target` on the CPU: ONNX Runtime, TorchScript
    through torch, Keras as a traced graph), after a warm-up until the latency settles, on seeded inputs at `batch`
    generated from `specs` (one per input, in order). So the `latency_ms` a manifest records is the figure that
    test_latency[<id>-cpu] measures and compares with the claim. A TensorFlow model (with `threads`) is timed in
    `TF_PROCESSES` fresh processes, which start TensorFlow with `threads`, as the gate's budget test does; `fresh`
    False times it here (what each of those processes does)."""
    from model_checks.backends import family, load_runtime, open_target
    from model_checks.checks.budgets.measure import warm_up
    from model_checks.core.inputs import generate

    if family(fmt) == "tensorflow" and threads and fresh:
        return median_timing(
            [_in_fresh_process(path, fmt, root, list(specs), batch, threads, runs, seed) for _ in range(TF_PROCESSES)]
        )
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


def _in_fresh_process(*args: Any) -> Timing:
    """`target_timing(*args, fresh=False)` in a new interpreter: TensorFlow sizes its thread pools once, when it
    starts, and its figures differ from process to process."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(target_timing, *args, fresh=False).result()


def sha256(path: Path) -> str:
    """The sha256 the gate's integrity check computes for a single-file model."""
    return sha256_of([path])
