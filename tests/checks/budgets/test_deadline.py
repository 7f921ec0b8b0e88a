"""A measurement far slower than its budget stops at its own deadline (issue 11: every run is bounded)."""

from __future__ import annotations

import pytest

from model_checks.core.errors import MeasurementDeadlineError


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_measurement_far_slower_than_its_budget_stops_at_its_deadline() -> None:
    from model_checks.checks.budgets.measure import Deadline

    clock = _Clock()
    deadline = Deadline(300.0, 662, 4.0, "p99 4 ms", clock=clock)
    deadline.check("after warm-up", 0.5)  # 662 rounds of 0.5 ms fit
    with pytest.raises(MeasurementDeadlineError) as e:
        deadline.check("after warm-up", 500.0)
    assert str(e.value) == (
        "the measurement (warm-up and 662 rounds) cannot finish within its deadline of 31.5 s (5 s of warm-up + 662 rounds x 10 x "
        "p99 4 ms): stopped after warm-up, 0 round(s) done, 31.5 s left; a call takes 500 ms, so 662 more round(s) need about 331 s. "
        "The model is far slower than its budget: make it faster, or raise the budget (or --model-checks-timeout) if this speed is expected"
    )
    before_round = deadline.bounded(None)
    before_round()
    clock.now = 40.0
    with pytest.raises(MeasurementDeadlineError, match=r"stopped before round 2, 1 round\(s\) done, 0 s left"):
        before_round()
    assert Deadline(2.0, 662, 4.0, "p99 4 ms").seconds == 2.0  # the timeout wins when it is shorter
    assert Deadline(300.0, 64, None, "").origin == "--model-checks-timeout (300 s)"
