"""The plugin's fixtures, all namespaced `model_checks_*`: a user's own `artifact` fixture is never touched."""

from __future__ import annotations

from typing import Any

import pytest

from model_checks.plugin.state import ITEM_KEY, NO_ROOTS, options, session
from model_checks.plugin.verdict import verdict as gate_verdict


def _item_param(request: pytest.FixtureRequest, index: int, name: str) -> Any:
    if ITEM_KEY in request.node.stash:
        return request.node.stash[ITEM_KEY][index]
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and name in callspec.params:
        return callspec.params[name]
    pytest.skip(NO_ROOTS)


@pytest.fixture
def model_checks_artifact(request: pytest.FixtureRequest) -> Any:
    """The artifact a test checks: a test of yours that takes it runs once per artifact under the gated roots."""
    return _item_param(request, 0, "model_checks_artifact")


@pytest.fixture
def model_checks_device(request: pytest.FixtureRequest) -> str:
    """The device ("cpu" or "gpu") a budget test measures on."""
    return _item_param(request, 1, "model_checks_device")


@pytest.fixture
def model_checks_verdict(request: pytest.FixtureRequest, model_checks_artifact: Any):  # type: ignore[no-untyped-def]
    """`model_checks_verdict("equivalence")`: run a built-in check on this test's artifact."""

    def verdict(check: str):  # type: ignore[no-untyped-def]
        __tracebackhide__ = True
        return item_verdict(request.node, check, model_checks_artifact)

    return verdict


def item_verdict(item: pytest.Item, check: str, artifact: Any) -> Any:
    """Run a built-in check on `artifact` for `item`, on the item's runtime where it has one
    (`test_equivalence[<id>-openvino]`): what `model_checks_verdict` does, and every gate item (`gate.run_check`)."""
    __tracebackhide__ = True
    gs = session(item.config)
    runtime = item.stash[ITEM_KEY][1] if ITEM_KEY in item.stash else None
    run = None
    if runtime:
        import dataclasses

        from model_checks import checks

        def run(ctx):  # type: ignore[no-untyped-def]
            return checks.module(check).run(dataclasses.replace(ctx, runtime=runtime))

    return gate_verdict(gs, check, artifact, item, run=run)


@pytest.fixture
def model_checks_budget(request: pytest.FixtureRequest, model_checks_artifact: Any, model_checks_device: str):  # type: ignore[no-untyped-def]
    """`model_checks_budget("latency", benchmark)`: measure a budget of this test's artifact on its device through
    pytest-benchmark's `benchmark` fixture, and gate it."""
    gs = session(request.config)
    from model_checks.checks.budgets.check import BudgetOptions, run

    o = options(request.config)
    budget_options = BudgetOptions(
        baselines=o.baselines,
        update_baselines=o.update_baselines,
        min_effect=o.min_effect,
        trust_code=o.trust_code,
        latency_claim_factor=o.latency_claim_factor,
        timeout_s=o.timeout_s,
        strict_claims=o.strict_claims,
    )

    def verdict(check: str, benchmark: Any):  # type: ignore[no-untyped-def]
        __tracebackhide__ = True
        return gate_verdict(
            gs,
            check,
            model_checks_artifact,
            request.node,
            run=lambda ctx: run(check, ctx, model_checks_device, benchmark, budget_options),
            benchmark=benchmark,
        )

    return verdict


@pytest.fixture(scope="session")
def model_checks_session(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """The gate's session state: roots, discovered artifacts and the shared model pool."""
    gs = session(request.config)
    if gs is None:
        pytest.skip(NO_ROOTS)
    return gs
