"""The budget checks as collection sees them (`checks/registry.py`): one item per device whose budget declares
the check. Their measuring machinery (`check`, with the policies, the baselines and the measurement protocol)
is imported when a budget is first measured, not when the gate lists its tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from model_checks.checks.budgets.spec import devices_for
from model_checks.checks.registry import Check

if TYPE_CHECKING:
    from model_checks.checks.budgets.check import BudgetOptions
    from model_checks.checks.budgets.measure import Bench
    from model_checks.checks.context import CheckContext
    from model_checks.core.results import CheckResult

NAMES = ("latency", "throughput", "speedup")


def run(check: str, ctx: CheckContext, device: str, bench: Bench, options: BudgetOptions | None = None) -> CheckResult:
    """`check.run`: measure and gate `check` ("latency", "throughput" or "speedup") of the artifact on `device`."""
    from model_checks.checks.budgets import check as measured

    return measured.run(check, ctx, device, bench, options or measured.BudgetOptions())


def _declared(name: str) -> Check:
    """A budget check: collected once per device whose budget declares it (`test_latency[<id>-cpu]`), measured
    through pytest-benchmark's fixture."""
    return Check(
        name,
        run,
        applies=lambda m: bool(devices_for(m, name)),
        per_device=True,
        variants=lambda m: devices_for(m, name),
        machine_dependent=True,
        timed=True,
    )


LATENCY, THROUGHPUT, SPEEDUP = (_declared(name) for name in NAMES)
