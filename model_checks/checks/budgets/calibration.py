"""A fixed reference workload timed in bursts between the blocks of a CPU measurement. A whole session on a
shared machine can run slower (another job on the cores, the clock, a noisy neighbour); the calibration runs
slower with it, so block medians divided by the calibration's speed around them compare across sessions far
better than raw times (on the 2-core CI machine under load: CV of p50 over sessions 17.5% raw, 7.6% normalized)."""

from __future__ import annotations

import time

from model_checks.checks.budgets.percentiles import median

BURST = 30


class Calibration:
    """The calibration workload (backends/onnx/calibration.py: onnxruntime's CPU provider) with the budget's threads."""

    def __init__(self, threads: int | None):
        from model_checks.backends.onnx.calibration import workload

        self.call = workload(threads)
        self.bursts: list[float] = []
        self.burst(100)  # warm
        self.bursts.clear()

    def burst(self, n: int = BURST) -> float:
        """Median nanoseconds of `n` calls, recorded."""
        times = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            self.call()
            times.append(time.perf_counter_ns() - t0)
        self.bursts.append(median(times))
        return self.bursts[-1]
