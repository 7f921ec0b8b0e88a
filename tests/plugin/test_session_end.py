"""The workers are asked to exit at the session's end and reaped at unconfigure, so they wind down while pytest
writes its summary instead of before it (issue 24, row d: a worker that held a large model takes tens of
milliseconds to exit); their sandbox is still removed."""

from __future__ import annotations

import pytest

from fixtures import artifacts as A
from fixtures.gate_run import run_gate
from model_checks.isolation.workers import Worker


def test_workers_exit_while_pytest_reports_and_are_reaped_after(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    real_exit, real_stop = Worker.request_exit, Worker.stop

    def request_exit(self):  # type: ignore[no-untyped-def]
        order.append("exit asked")
        real_exit(self)

    def stop(self, kill=False):  # type: ignore[no-untyped-def]
        order.append("reaped")
        real_stop(self, kill)

    monkeypatch.setattr(Worker, "request_exit", request_exit)
    monkeypatch.setattr(Worker, "stop", stop)
    monkeypatch.setattr(Worker, "order", order, raising=False)  # where the conftest (same process) adds its line
    pytester.makeconftest("""
        from model_checks.isolation.workers import Worker

        def pytest_terminal_summary(terminalreporter):
            Worker.order.append("summary")
    """)
    A.pair(pytester.path / "arts" / "p")
    run = run_gate(pytester, pytester.path / "arts")
    assert run.ret == 0
    assert order.index("exit asked") < order.index("summary") < order.index("reaped"), order
    assert not list((pytester.path / "tmp").glob("model-checks-workers-*"))  # removed at unconfigure
