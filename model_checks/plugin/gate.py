"""The two test functions every gate item runs: the plugin builds one item per applicable check (and device) from
the check registry (`model_checks.checks`) and binds it here, so a check cannot be left without its test. Each
only hands off: the check returns a CheckResult and the verdict fixtures turn it into pass, skip or a failure."""

from __future__ import annotations

from typing import Callable

import pytest

from model_checks.plugin.state import ITEM_KEY

Budget = Callable[[str, object], object]


def check_of(request: pytest.FixtureRequest) -> str:
    """The check a gate item runs (its name, `test_<check>[<id>]`, is built from the same declaration)."""
    return request.node.stash[ITEM_KEY][2]


def run_check(request: pytest.FixtureRequest) -> None:
    # What `model_checks_verdict` does, without its two fixtures: pytest sets up a fixture for every item that
    # asks for it (a third of a gate item's cost in pytest's own code, on 582 items of small models).
    from model_checks.plugin.fixtures import item_verdict

    __tracebackhide__ = True
    item_verdict(request.node, check_of(request), request.node.stash[ITEM_KEY][0])


# A check measured per device (a budget): once per device, as `test_latency[<id>-cpu]`, through pytest-benchmark's
# fixture; never under xdist.
def run_per_device(request: pytest.FixtureRequest, model_checks_budget: Budget, benchmark: object) -> None:
    model_checks_budget(check_of(request), benchmark)
