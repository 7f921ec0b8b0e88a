"""equivalence asks the reference's worker once for all its cases (the batch and "sample 0 alone"), as it asks the
artifact's own worker: one round trip, the same verdict and figures (issue 24, row d)."""

from __future__ import annotations

import pytest

from fixtures import artifacts as A
from fixtures.gate_run import run_gate
from model_checks.isolation.workers import Worker


@pytest.fixture
def infers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Each inference request sent to a worker: (the model's file as errors name it, how many cases it carries)."""
    seen: list[tuple[str, int]] = []
    real_send = Worker.send

    def send(self, op, args, what, requests=1):  # type: ignore[no-untyped-def]
        if op == "infer":
            seen.append((str(what), requests))
        return real_send(self, op, args, what, requests)

    monkeypatch.setattr(Worker, "send", send)
    return seen


def test_the_references_cases_go_in_one_request(pytester: pytest.Pytester, infers: list[tuple[str, int]]) -> None:
    root = pytester.path / "arts"
    A.pair(root)
    run = run_gate(pytester, root, "-k", "equivalence")
    assert run.outcome("equivalence", "variant@1.0") == "passed"
    props = dict(run.reports[("equivalence", "variant@1.0")].user_properties)
    assert props["model_checks.rel_l2"] == 0.0
    # the variant's request, then the reference's: each carries the batch and sample 0 alone
    assert [n for _, n in infers] == [2, 2], infers
