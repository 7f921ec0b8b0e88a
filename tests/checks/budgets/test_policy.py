from model_checks.checks.budgets.percentiles import Percentiles
from model_checks.checks.budgets.policy import LatencyBudget, LatencyClaim, SpeedupBudget, ThroughputBudget
from model_checks.checks import registry
from model_checks.checks.budgets.spec import device_budget, devices_for
from model_checks.manifest.model import Limit

FIG = Percentiles.of_ns([2e6] * 90 + [9e6] * 10)  # p50 2 ms, p99 9 ms


def test_latency_budget_fails_with_what_by_how_much_and_where():
    assert LatencyBudget("p50", Limit(2.5, "metadata.yaml budgets.cpu.latency_ms.p50")).fails(FIG) is None
    msg = LatencyBudget("p99", Limit(4.0, "policy.yaml budgets.cpu.latency_ms.p99")).fails(FIG)
    assert msg == "latency p99 9.000 ms > 4 ms (+125.0% over the limit set in policy.yaml budgets.cpu.latency_ms.p99, n=100)"


def test_throughput_and_speedup_budgets():
    t = ThroughputBudget(Limit(500, "metadata.yaml budgets.cpu.throughput_per_s"), batch_size=8)
    assert t.fails(600.0) is None
    assert t.fails(400.0) == "throughput 400.0/s at batch 8 < 500/s (20.0% short of the limit set in metadata.yaml budgets.cpu.throughput_per_s)"
    s = SpeedupBudget(Limit(1.3, "metadata.yaml budgets.cpu.speedup_vs_reference"))
    assert s.fails(1.5) is None and "speedup 1.100x over the reference < 1.3x" in s.fails(1.1)


def test_latency_claim_holds_within_the_factor_either_way():
    claim = Limit(2.0, "a/metadata.yaml")  # FIG has p50 2 ms
    assert LatencyClaim(claim).fails(FIG) is None and LatencyClaim(Limit(5.9, "m")).fails(FIG) is None
    assert LatencyClaim(Limit(0.5, "a/metadata.yaml")).fails(FIG) == (
        "latency_ms: a/metadata.yaml claims p50 0.5 ms at batch 1; measured p50 2.000 ms here, 4.0x slower than the claim, "
        "beyond the 3x a different machine explains (re-record it when packaging, or find what slowed the model)")
    assert "10.0x faster than the claim" in LatencyClaim(Limit(20.0, "m")).fails(FIG)
    assert LatencyClaim(Limit(0.5, "m"), factor=5).fails(FIG) is None and LatencyClaim(Limit(0.001, "m"), factor=0).fails(FIG) is None


def manifest(tmp_path, budgets, policy=None):
    from fixtures import artifacts
    from model_checks.core.discovery import discover

    artifacts.onnx_artifact(tmp_path / "a", budgets=budgets)
    if policy:
        (tmp_path / "policy.yaml").write_text(policy)
    (art,) = discover([tmp_path])
    assert art.manifest is not None, art.error
    return art.manifest


def test_spec_reads_budgets_with_their_source(tmp_path):
    m = manifest(tmp_path, {"cpu": {"batch_size": 8, "threads": 2, "latency_ms": {"p50": 2.0}}},
                 policy="budgets:\n  cpu:\n    latency_ms: {p99: 4.0}\n    throughput_per_s: 100\n")
    b = device_budget(m, "cpu")
    assert (b.batch_size, b.threads) == (8, 2)
    assert b.latency_ms["p50"].value == 2.0 and "metadata.yaml" in b.latency_ms["p50"].source
    assert b.latency_ms["p99"].value == 4.0 and "policy.yaml" in b.latency_ms["p99"].source
    assert device_budget(m, "gpu") is None
    assert devices_for(m, "latency") == ["cpu"] and devices_for(m, "speedup") == []
    assert [n for n, c in registry().items() if c.per_device and c.applies(m)] == ["latency", "throughput"]


def test_no_budgets_no_checks(tmp_path):
    from fixtures import artifacts
    from model_checks.core.discovery import discover

    artifacts.onnx_artifact(tmp_path / "a")
    (art,) = discover([tmp_path])
    assert not [n for n, c in registry().items() if c.per_device and c.applies(art.manifest)] and devices_for(None, "latency") == []
