import pytest

from model_checks.checks.budgets.measure import (
    BareBench,
    Measurement,
    WarmUp,
    block_medians,
    block_starts,
    samples_ns,
    timed,
    warm_up,
)


class FakeModel:
    """A call whose duration follows a script, on a clock it advances: warm-up is tested without timing anything."""

    def __init__(self, durations_ns):
        self.durations = iter(durations_ns)
        self.now = 0
        self.calls = 0

    def clock(self):
        return self.now

    def call(self):
        self.calls += 1
        self.now += next(self.durations)


def test_warm_up_runs_until_the_latency_settles():
    cold = [10_000_000 - i * 200_000 for i in range(40)]  # 10 ms falling: caches filling
    model = FakeModel(cold + [1_000_000] * 1000)
    w = warm_up(model.call, clock=model.clock)
    assert w.stable and w.calls == model.calls and 40 < w.calls <= 60
    assert w.window_median_ms == pytest.approx(1.0)


def test_warm_up_gives_up_and_says_so():
    model = FakeModel([1_000_000 * (1 + (i % 20) // 10 * 3) for i in range(10_000)])  # alternates 1 ms and 4 ms windows
    w = warm_up(model.call, max_calls=200, clock=model.clock)
    assert not w.stable and w.calls == 200


def test_block_medians_cut_consecutive_blocks():
    samples = [float(i) for i in range(80)]
    assert block_medians(samples, 8) == [4.5 + 10 * i for i in range(8)]
    assert block_medians([1.0, 2.0, 3.0], 8) == [2.0]
    assert len(block_medians([1.0] * 83, 8)) == 8  # the remainder joins the last block


def test_bare_bench_takes_one_call_per_sample_and_runs_setup_untimed():
    order = []
    bench = BareBench()
    bench.pedantic(
        lambda: order.append("call"), setup=lambda: order.append("setup"), rounds=5, warmup_rounds=2, iterations=1
    )
    assert order == ["setup", "call"] * 7 and len(samples_ns(bench)) == 5
    with pytest.raises(AssertionError):
        bench.pedantic(lambda: None, rounds=1, iterations=2)


def test_measurement_keeps_start_up_out_of_the_samples():
    m = Measurement(
        "cpu",
        "fake",
        4,
        1,
        session_create_ms=50.0,
        first_call_ms=20.0,
        warmup=WarmUp(30, True, 1.0),
        samples_ns=tuple([1e6] * 100),
        load=(0.5, 0.5, 0.5),
    )
    assert m.percentiles.max == pytest.approx(1.0)  # neither 50 ms nor 20 ms is a sample
    assert m.throughput_per_s == pytest.approx(4000.0)
    f = m.figures()
    assert (
        f["session_create_ms"] == 50.0 and f["first_call_ms"] == 20.0 and f["latency_ms"]["p99"] == pytest.approx(1.0)
    )
    assert len(f["block_medians_ms"]) == 8 and not f["under_load"]


def test_timed_returns_result_and_milliseconds():
    ticks = iter([0, 3_000_000])
    out, ms = timed(lambda: "x", clock=lambda: next(ticks))
    assert out == "x" and ms == 3.0


def test_blocks_are_normalized_by_the_calibration_around_them():
    samples = tuple([2e6] * 40 + [4e6] * 40)  # 8 blocks of 10: 2 ms then 4 ms
    cal = (1e6,) * 5 + (2e6,) * 4  # the machine halved its speed after block 4: so did the calibration
    m = Measurement("cpu", "fake", 1, 1, 1.0, 1.0, WarmUp(30, True, 1.0), samples, calibration_ns=cal, load=None)
    assert m.normalized_blocks == pytest.approx([2.0] * 4 + [4 / 1.5] + [2.0] * 3)
    assert Measurement("gpu", "fake", 1, 1, 1.0, 1.0, WarmUp(30, True, 1.0), samples, load=None).normalized_blocks == []
    assert block_starts(80) == {0, 10, 20, 30, 40, 50, 60, 70} and block_starts(3) == {0}
