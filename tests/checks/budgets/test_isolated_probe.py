"""Budgets time models in the pytest process, so each model first runs once in its isolated worker:
one that breaks its runtime fails the budget test with what happened, and the session goes on."""

from fixtures import artifacts as A
from fixtures import bad_models
from fixtures import onnx_models as M

BUDGET = {"cpu": {"threads": 1, "latency_ms": {"p50": 1000.0}}}


def test_a_model_that_exhausts_memory_fails_its_budget_in_the_worker(pytester):
    root = pytester.path / "arts"
    A.onnx_artifact(root / "hog", bad_models.memory_hog(), name="hog", budgets=BUDGET)
    A.onnx_artifact(root / "ok", M.linear(), name="ok", budgets=BUDGET)
    r = pytester.runpytest(
        "--model-checks",
        "arts",
        "-p",
        "no:cacheprovider",
        "-m",
        "cpu",
        "-k",
        "test_latency",
        "--model-checks-worker-memory",
        "1024",
        "--benchmark-disable-gc",
    )
    r.assert_outcomes(passed=1, failed=1)
    out = r.stdout.str()
    assert (
        "test_latency[hog@1.0-cpu]" in out
        and "memory limit exceeded" in out
        and "exceeded the worker's memory limit of 1024 MiB" in out
    )
