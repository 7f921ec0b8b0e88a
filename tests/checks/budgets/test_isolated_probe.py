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


def test_a_call_that_never_returns_in_this_process_is_stopped_at_the_deadline(tmp_path):
    """The watchdog stops onnxruntime's run in flight (RunOptions.terminate, checked between nodes, a Loop's turns
    included) where a deadline checked between calls never comes."""
    import time

    import numpy as np
    import pytest

    from model_checks.backends import open_target
    from model_checks.checks.budgets.measure import Watchdog
    from model_checks.core.errors import MeasurementDeadlineError

    path = tmp_path / "m.onnx"
    path.write_bytes(bad_models.endless_loop().SerializeToString())
    target = open_target(path, "onnx", tmp_path, "cpu", 1)
    target.prepare({"input": np.zeros((1, 1), np.float32)})
    start = time.monotonic()
    with pytest.raises(MeasurementDeadlineError) as e, Watchdog([target], 0.5, "a test's 0.5 s"):
        target.call()
    assert time.monotonic() - start < 30
    assert str(e.value).startswith(
        "a call of the model was still running 0.5 s into its measurement (its deadline: a test's 0.5 s), and was "
        "stopped through its runtime's cancellation."
    )
    target.close()


def test_a_model_proven_in_its_worker_that_hangs_in_this_process_fails_its_budget_in_time(pytester, monkeypatch):
    """Budgets time in this process after one run in the worker proved the model on the same inputs; a model whose
    calls differ (random numbers deciding a Loop's turns) passed that run and then held the session past every
    timeout, SIGTERM included (a signal waits for the native call). Stood in for here by a proof that passes."""
    from model_checks.isolation.runner import IsolatedRunner

    monkeypatch.setattr(IsolatedRunner, "infer", lambda self, feeds: {})
    root = pytester.path / "arts"
    A.onnx_artifact(root / "endless", bad_models.endless_loop(), name="endless", budgets=BUDGET)
    r = pytester.runpytest(
        "--model-checks", "arts", "-p", "no:cacheprovider", "-m", "cpu", "--model-checks-timeout", "3"
    )
    r.assert_outcomes(failed=1)
    out = r.stdout.str()
    assert "latency: endless@1.0: measurement over its deadline" in out
    assert "a call of the model was still running 3 s into its measurement (its deadline: --model-checks-timeout" in out


def test_a_model_that_draws_random_numbers_is_not_timed_where_its_calls_cannot_be_stopped(pytester, monkeypatch):
    """A runtime without cancellation (LiteRT, TensorFlow, torch) cannot stop a call in flight: a model that draws
    random numbers there is not timed in the gate's process, and its budget says why (skipped, naming the ops)."""
    from onnx import TensorProto, helper

    from model_checks.backends import base

    real = base.Target.__init__

    def no_cancel(self, *a, **k):  # type: ignore[no-untyped-def]
        real(self, *a, **{**k, "cancel": None})

    monkeypatch.setattr(base.Target, "__init__", no_cancel)
    graph = helper.make_graph(
        [
            helper.make_node("RandomUniformLike", ["input"], ["r"], dtype=TensorProto.FLOAT),
            helper.make_node("Add", ["input", "r"], ["logits"]),
        ],
        "noisy",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    root = pytester.path / "arts"
    A.onnx_artifact(root / "noisy", model, name="noisy", budgets=BUDGET)
    A.onnx_artifact(root / "ok", M.linear(), name="ok", budgets=BUDGET)
    r = pytester.runpytest("--model-checks", "arts", "-p", "no:cacheprovider", "-m", "cpu", "-rs")
    r.assert_outcomes(passed=1, skipped=1)
    assert (
        "noisy@1.0 on cpu: model.onnx draws random numbers (RandomUniformLike), so its calls may not all take alike, "
        "and its runtime (onnxruntime" in r.stdout.str()
    )
