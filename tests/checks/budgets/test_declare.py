"""The budget checks' declarations (budgets/declare.py) are what collection reads; their `run` is check.run,
imported on first use (that collection does not import it: tests/plugin/test_imports.py)."""

from fixtures import artifacts
from model_checks import checks
from model_checks.checks.budgets import check, declare
from model_checks.checks.budgets.check import BudgetOptions
from model_checks.checks.budgets.measure import BareBench
from model_checks.checks.context import CheckContext
from model_checks.core.discovery import discover
from model_checks.core.pool import ModelPool


def test_the_registry_lists_the_three_budget_checks_per_device_from_the_declarations():
    for name, declared in zip(declare.NAMES, (declare.LATENCY, declare.THROUGHPUT, declare.SPEEDUP), strict=True):
        assert checks.get(name) is declared and declared.name == name
        assert declared.per_device and declared.machine_dependent and declared.run is declare.run
    assert tuple(check.CHECKS) == declare.NAMES  # each declared check has its measurement


def test_the_declared_run_hands_its_arguments_to_check_run(monkeypatch):
    seen = []
    monkeypatch.setattr(check, "run", lambda *args: seen.append(args) or "result")
    mine = BudgetOptions(min_effect=0.2)
    assert declare.run("latency", "ctx", "cpu", "bench", mine) == "result"
    assert declare.run("speedup", "ctx", "gpu", "bench") == "result"
    assert seen == [("latency", "ctx", "cpu", "bench", mine), ("speedup", "ctx", "gpu", "bench", BudgetOptions())]


def test_the_declared_run_skips_as_check_run_does(tmp_path):
    artifacts.onnx_artifact(tmp_path / "variant", name="variant", budgets={"cpu": {"latency_ms": {"p50": 50.0}}})
    art = next(iter(discover([tmp_path])))
    assert art.manifest is not None, art.error
    ctx = CheckContext(art, ModelPool())
    assert declare.LATENCY.variants(art.manifest) == ["cpu"] and declare.THROUGHPUT.variants(art.manifest) == []
    for name, device in (("latency", "gpu"), ("throughput", "cpu")):
        want = check.run(name, ctx, device, BareBench())
        got = declare.run(name, ctx, device, BareBench())
        assert got.skipped and (got.ok, got.headline, got.skipped, got.figures) == (
            want.ok,
            want.headline,
            want.skipped,
            want.figures,
        )
        assert got.skipped == f"variant@1.0 on {device}: no budgets.{device} for {name} in variant/metadata.yaml"
