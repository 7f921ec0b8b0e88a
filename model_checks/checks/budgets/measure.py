"""The measurement protocol. Opening the model and its first call are timed on their own and never mixed into
the steady state; warm-up runs until the latency settles; then every sample is one call, taken through a
pytest-benchmark fixture in pedantic mode (`iterations=1`) or, outside pytest, through `BareBench`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from model_checks.checks.budgets.percentiles import Percentiles, median

BLOCKS = 8  # the steady state is cut into this many consecutive blocks; their medians feed the comparison
MIN_BLOCK = 8  # samples in a block, at least


class Bench(Protocol):
    """What the measurement needs of pytest-benchmark's `benchmark` fixture."""

    extra_info: dict

    def pedantic(
        self,
        target: Callable,
        args: tuple = (),
        kwargs: dict | None = None,
        setup: Callable | None = None,
        teardown: Callable | None = None,
        rounds: int = 1,
        warmup_rounds: int = 0,
        iterations: int = 1,
    ) -> Any: ...


class BareBench:
    """The `benchmark` fixture's pedantic mode without pytest, timed with the same clock (perf_counter)."""

    def __init__(self) -> None:
        self.extra_info: dict = {}
        self.data: list[float] = []

    def pedantic(
        self,
        target: Callable,
        args: tuple = (),
        kwargs: dict | None = None,
        setup: Callable | None = None,
        teardown: Callable | None = None,
        rounds: int = 1,
        warmup_rounds: int = 0,
        iterations: int = 1,
    ) -> Any:
        assert iterations == 1, "each sample is one call"
        result = None
        for i in range(warmup_rounds + rounds):
            if setup is not None:
                setup()
            t0 = time.perf_counter()
            result = target(*args, **(kwargs or {}))
            dt = time.perf_counter() - t0
            if i >= warmup_rounds:
                self.data.append(dt)
            if teardown is not None:
                teardown()
        return result


def samples_ns(bench: Any) -> list[float]:
    """The raw per-call times a bench took, in nanoseconds."""
    # pytest-benchmark keeps the raw rounds only on its private stats object (5.x; pinned by tests/plugin)
    data = bench.data if isinstance(bench, BareBench) else bench.stats.stats.data
    return [s * 1e9 for s in data]


WARMUP_SECONDS = 5.0  # warm_up's own cap
ROUND_ALLOWANCE = 10.0  # a round may take this many times the budget before the measurement is cut short
MIN_DEADLINE_S = 10.0  # a measurement always gets this long (start-up noise on a busy machine), the timeout permitting


def timeout_origin(timeout_s: float) -> str:
    """How a bound that is the per-request timeout is named in a message."""
    return f"--model-checks-timeout ({timeout_s:g} s)"


class Watchdog:
    """Stops a timed call that outlasts `seconds`: budgets time a model in this process, after one run in its worker
    proved it on the same inputs, and a deadline checked between calls cannot end a call that does not return (a
    model that draws random numbers can loop or allocate on some calls only; a signal waits for the native call
    too). When the time is up the targets' calls in flight are stopped through their runtime's own cancellation
    (`Target.cancel`), and the call that raised for it reads as the measurement over its deadline."""

    GRACE_S = 1.0  # past the deadline, which a call between calls meets first

    def __init__(self, targets: list[Any], seconds: float, origin: str):
        import threading

        self.targets, self.seconds, self.origin = targets, seconds, origin
        self.fired = False
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        for t in self.targets:
            if t.cancel is not None:
                try:
                    t.cancel()
                except Exception:  # a target already closed: nothing in flight to stop
                    pass

    def __enter__(self) -> Watchdog:
        self.timer.start()
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        from model_checks.core.errors import MeasurementDeadlineError

        self.timer.cancel()
        if self.fired and exc is not None and not isinstance(exc, MeasurementDeadlineError):
            raise MeasurementDeadlineError(
                f"a call of the model was still running {self.seconds:g} s into its measurement (its deadline: {self.origin}), and "
                "was stopped through its runtime's cancellation. One run in the model's worker proved it on these "
                "inputs, but its calls do not all take alike (random numbers can decide how long a call loops or "
                "what it allocates); such a model is not timed here"
            ) from None
        return False


class Deadline:
    """When a budget's whole measurement (warm-up and every round) must be done: the smaller of the per-request
    timeout and warm-up plus `rounds` times ROUND_ALLOWANCE x the budget per call. A model far slower than its
    budget then fails in seconds, naming both, instead of running hundreds of rounds in the pytest process."""

    def __init__(
        self,
        timeout_s: float,
        rounds: int,
        per_call_ms: float | None,
        what: str,
        clock: Callable[[], float] = time.monotonic,
    ):
        allowance = None if per_call_ms is None else WARMUP_SECONDS + rounds * ROUND_ALLOWANCE * per_call_ms / 1e3
        self.seconds = timeout_s if allowance is None else min(timeout_s, max(MIN_DEADLINE_S, allowance))
        self.origin = (
            timeout_origin(timeout_s)
            if allowance is None or allowance >= timeout_s
            else f"{WARMUP_SECONDS:g} s of warm-up + {rounds} rounds x {ROUND_ALLOWANCE:g} x {what}"
            + (f", at least {MIN_DEADLINE_S:g} s" if allowance < MIN_DEADLINE_S else "")
        )
        self.rounds = rounds
        self.clock = clock
        self.start = clock()
        self.done = 0  # rounds finished

    def left(self) -> float:
        return self.seconds - (self.clock() - self.start)

    def check(self, phase: str, call_ms: float | None = None) -> None:
        """Raise MeasurementDeadlineError when the deadline has passed, or when `rounds` calls of `call_ms` cannot end in time."""
        from model_checks.core.errors import MeasurementDeadlineError

        left = self.left()
        need = None if call_ms is None else (self.rounds - self.done) * call_ms / 1e3
        if left > 0 and (need is None or need <= left):
            return
        pace = (
            f"; a call takes {call_ms:.3g} ms, so {self.rounds - self.done} more round(s) need about {need:.3g} s"
            if need
            else ""
        )
        raise MeasurementDeadlineError(
            f"the measurement (warm-up and {self.rounds} rounds) cannot finish within its deadline of {self.seconds:.3g} s "
            f"({self.origin}): stopped {phase}, {self.done} round(s) done, {max(left, 0):.3g} s left{pace}. The model is far "
            "slower than its budget: make it faster, or raise the budget (or --model-checks-timeout) if this speed is expected"
        )

    def bounded(self, setup: Callable[[], Any] | None) -> Callable[[], None]:
        """pedantic's setup (untimed), checking the deadline before each round."""

        def before_round() -> None:
            self.check(f"before round {self.done + 1}")
            self.done += 1
            if setup is not None:
                setup()

        return before_round


@dataclass(frozen=True)
class WarmUp:
    calls: int
    stable: bool
    window_median_ms: float


def warm_up(
    call: Callable[[], Any],
    window: int = 10,
    tolerance: float = 0.05,
    min_calls: int = 20,
    max_calls: int = 2000,
    max_seconds: float = WARMUP_SECONDS,
    clock: Callable[[], int] = time.perf_counter_ns,
    deadline: Deadline | None = None,
) -> WarmUp:
    """Call until the median of a window of calls is within `tolerance` of the previous window's: caches,
    allocators, lazy initialisation and CPU frequency have settled. Gives up (stable=False) at `max_calls`
    or `max_seconds`, whichever comes first; the measurement says so."""
    start = clock()
    calls, previous = 0, None
    while True:
        times = []
        for _ in range(window):
            t0 = clock()
            call()
            times.append(clock() - t0)
        calls += window
        current = median(times)
        if deadline is not None:
            deadline.check(f"in warm-up after {calls} calls")
        if previous is not None and calls >= min_calls and abs(current - previous) <= tolerance * previous:
            return WarmUp(calls, True, current / 1e6)
        if calls >= max_calls or clock() - start > max_seconds * 1e9:
            return WarmUp(calls, False, current / 1e6)
        previous = current


def block_starts(rounds: int, blocks: int = BLOCKS) -> set[int]:
    """The sample indices where `block_medians` starts a block."""
    size = rounds // blocks
    return {i * size for i in range(blocks)} if size else {0}


def block_medians(samples: list[float], blocks: int = BLOCKS) -> list[float]:
    """Medians of `blocks` consecutive, equal blocks of the samples (a remainder joins the last block)."""
    size = len(samples) // blocks
    if size == 0:
        return [median(samples)] if samples else []
    return [median(samples[i * size : (i + 1) * size if i < blocks - 1 else len(samples)]) for i in range(blocks)]


@dataclass(frozen=True)
class Measurement:
    """One timed run of a model on a device: start-up figures apart, then the steady-state samples."""

    device: str
    target: str
    batch_size: int
    threads: int | None
    session_create_ms: float
    first_call_ms: float
    warmup: WarmUp
    samples_ns: tuple[float, ...]
    model_bytes: int = 0
    calibration_ns: tuple[float, ...] = ()  # calibration bursts: before each block, and one after the last
    load: tuple[float, float, float] | None = field(
        default_factory=lambda: os.getloadavg() if hasattr(os, "getloadavg") else None
    )

    @property
    def percentiles(self) -> Percentiles:
        return Percentiles.of_ns(self.samples_ns)

    @property
    def blocks_ms(self) -> list[float]:
        return [b / 1e6 for b in block_medians(list(self.samples_ns))]

    @property
    def normalized_blocks(self) -> list[float]:
        """Each block median over the calibration's speed around it (the bursts before and after the block);
        empty without calibration."""
        blocks, cal = self.blocks_ms, self.calibration_ns
        if len(cal) != len(blocks) + 1:
            return []
        return [b * 1e6 / ((cal[i] + cal[i + 1]) / 2) for i, b in enumerate(blocks)]

    @property
    def throughput_per_s(self) -> float:
        """Items per second at this batch size: batch / median call time."""
        return self.batch_size / (self.percentiles.p50 / 1e3)

    def under_load(self) -> bool:
        """Whether the 1-minute load average exceeded the cores while this ran (figures are then noisier)."""
        return self.load is not None and self.load[0] > (os.cpu_count() or 1)

    def figures(self) -> dict[str, Any]:
        """Everything a report or the benchmark JSON needs, as plain values."""
        return {
            "device": self.device,
            "target": self.target,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "session_create_ms": self.session_create_ms,
            "first_call_ms": self.first_call_ms,
            "warmup_calls": self.warmup.calls,
            "warmed_up": self.warmup.stable,
            "latency_ms": self.percentiles.as_dict(),
            "throughput_per_s": self.throughput_per_s,
            "block_medians_ms": self.blocks_ms,
            "calibration_ms": [c / 1e6 for c in self.calibration_ns],
            "normalized_blocks": self.normalized_blocks,
            "loadavg": list(self.load) if self.load else None,
            "under_load": self.under_load(),
        }


def timed(fn: Callable[[], Any], clock: Callable[[], int] = time.perf_counter_ns) -> tuple[Any, float]:
    """Run `fn` once: its result and the milliseconds it took."""
    t0 = clock()
    out = fn()
    return out, (clock() - t0) / 1e6
