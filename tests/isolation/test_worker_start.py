"""A machine that refuses a worker its sandbox directory or its process (a full disk, a process limit): the checks
that need the worker fail saying so and what to do; the run is not an internal error, and the checks that need no
worker still run."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest

from fixtures import artifacts as A
from fixtures.gate_run import run_gate
from model_checks.isolation import workers


def _full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(self, first=()):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device", "/tmp/model-checks-workers-x")

    monkeypatch.setattr(workers.Sandbox, "__init__", refused)


def _process_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError(11, "Resource temporarily unavailable")

    # the workers' own subprocess module only: pytest and its plugins start theirs as usual
    stub = SimpleNamespace(Popen=refused, DEVNULL=subprocess.DEVNULL, TimeoutExpired=subprocess.TimeoutExpired)
    monkeypatch.setattr(workers, "subprocess", stub)


@pytest.mark.parametrize(
    ("refuse", "said"),
    [
        (_full_disk, "No space left on device (/tmp/model-checks-workers-x)"),
        (_process_limit, "Resource temporarily unavailable (a new process)"),
    ],
    ids=["full-disk", "process-limit"],
)
def test_a_worker_the_machine_will_not_start_fails_the_checks_that_need_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, refuse, said
) -> None:  # type: ignore[no-untyped-def]
    A.onnx_artifact(pytester.path / "arts" / "m", name="m")
    refuse(monkeypatch)
    run = run_gate(pytester, pytester.path / "arts", "-k", "manifest or integrity")
    assert run.outcome("manifest", "m@1.0") == "passed"
    assert run.outcome("integrity", "m@1.0") == "failed"
    message = run.message("integrity", "m@1.0")
    assert (
        "integrity: m@1.0: worker not started" in message and f"the onnx worker could not be started: {said}" in message
    )
    assert "TMPDIR chooses where its sandbox goes" in message
