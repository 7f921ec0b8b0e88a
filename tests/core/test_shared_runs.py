"""What a session pays per artifact (issue 24): the same (model, feeds) run once and shared between checks,
an artifact's cases in one round trip to its worker, releases and warm-ups not waited on, and a large model
held alone in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fixtures import onnx_models
from model_checks.core import pool as pool_module
from model_checks.core.pool import ModelPool
from model_checks.isolation.limits import Limits
from model_checks.isolation.workers import Worker, Workers

LIMITS = Limits(memory_mb=2048, timeout_s=60)


def _feeds(seed: int) -> dict[str, np.ndarray]:
    return {"input": np.random.default_rng(seed).uniform(0, 1, (2, 4)).astype(np.float32)}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ops the parent sends and waits on, in order."""
    ops: list[str] = []
    real = Worker.request

    def counting(self, op, args, what, requests=1):  # type: ignore[no-untyped-def]
        ops.append(op)
        return real(self, op, args, what, requests)

    monkeypatch.setattr(Worker, "request", counting)
    return ops


def _expected(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)[0]


def test_the_same_feeds_run_once_and_every_check_reads_the_same_read_only_outputs(
    tmp_path: Path, sent: list[str]
) -> None:
    path = onnx_models.save(onnx_models.linear(), tmp_path / "m.onnx")
    with ModelPool(isolation=LIMITS) as pool:
        first = pool.runner(path, "onnx", tmp_path).infer(_feeds(0))
        again = pool.runner(path, "onnx", tmp_path).infer({"input": _feeds(0)["input"].copy()})  # equal, not the same
        other = pool.runner(path, "onnx", tmp_path).infer(_feeds(1))
    assert sent.count("infer") == 2  # seed 0 once, seed 1 once
    np.testing.assert_array_equal(first["logits"], again["logits"])
    np.testing.assert_allclose(other["logits"], _expected(path, _feeds(1)), rtol=1e-6)
    with pytest.raises(ValueError, match="read-only"):
        again["logits"][0, 0] = 1.0  # a check that changed it would change what the next check compares


def test_all_cases_of_an_artifact_go_to_the_worker_in_one_request(tmp_path: Path, sent: list[str]) -> None:
    path = onnx_models.save(onnx_models.linear(), tmp_path / "m.onnx")
    cases = [_feeds(i) for i in range(4)]
    with ModelPool(isolation=LIMITS) as pool:
        outs = pool.runner(path, "onnx", tmp_path).infer_many(cases)
    assert sent == ["load", "infer"]
    for feeds, out in zip(cases, outs, strict=True):
        np.testing.assert_allclose(out["logits"], _expected(path, feeds), rtol=1e-6)


def test_a_batch_gets_the_timeout_of_each_of_its_requests(tmp_path: Path) -> None:
    from fixtures import crashing

    workers = Workers(Limits(memory_mb=2048, timeout_s=1))
    try:
        fn, _ = crashing.ACTIONS["hang"]
        with pytest.raises(Exception, match="did not finish within 3 s"):
            workers.worker("onnx").request("call", (fn, (60,)), "m.onnx", requests=3)
    finally:
        workers.close()


def test_releases_and_warm_ups_are_not_waited_on_and_leave_the_pipe_in_step(tmp_path: Path, sent: list[str]) -> None:
    a = onnx_models.save(onnx_models.linear(), tmp_path / "a.onnx")
    b = onnx_models.save(onnx_models.linear(n_in=4, n_out=5), tmp_path / "b.onnx")
    with ModelPool(isolation=LIMITS) as pool:
        assert pool.workers is not None
        pool.workers.start_early({"onnx"})
        assert pool.workers.worker("onnx").alive and sent == []  # started and warming, nothing awaited
        pool.runner(a, "onnx", tmp_path).infer(_feeds(0))
        pool.release(a)  # a close the worker does not answer
        out = pool.runner(b, "onnx", tmp_path).infer(_feeds(0))  # so this answer is b's, not a stray one
    assert out["logits"].shape == (2, 5)
    assert sent == ["load", "infer", "load", "infer"]


def test_a_large_model_is_unloaded_before_another_loads_and_loads_again_only_for_new_feeds(
    tmp_path: Path, sent: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool_module, "LARGE_MODEL_BYTES", 0)  # every model counts as large
    a = onnx_models.save(onnx_models.linear(), tmp_path / "a.onnx")
    b = onnx_models.save(onnx_models.linear(n_in=4, n_out=5), tmp_path / "b.onnx")
    with ModelPool(isolation=LIMITS) as pool:
        ra = pool.runner(a, "onnx", tmp_path)
        known = ra.infer(_feeds(0))
        rb = pool.runner(b, "onnx", tmp_path)
        assert not ra.inner.loaded and rb.inner.loaded  # one large model in memory at a time
        np.testing.assert_array_equal(ra.infer(_feeds(0))["logits"], known["logits"])  # answered before: no reload
        assert sent == ["load", "infer", "load"]
        fresh = ra.infer(_feeds(1))  # new feeds: a loads again, and b makes room
        assert ra.inner.loaded and not rb.inner.loaded
        assert sent == ["load", "infer", "load", "load", "infer"]
        assert pool.loads == {a: 1, b: 1}  # a reload is the pool's business, not another load of the artifact
    np.testing.assert_allclose(fresh["logits"], _expected(a, _feeds(1)), rtol=1e-6)


def test_each_artifact_reports_its_workers_peak_memory_in_the_junit_properties(pytester: pytest.Pytester) -> None:
    from fixtures import artifacts as A
    from fixtures.gate_run import run_gate

    root = pytester.path / "arts"
    A.onnx_artifact(root / "small", onnx_models.linear(), name="small")
    A.onnx_artifact(root / "wide", onnx_models.linear(n_in=2048, n_out=4096), name="wide")  # 32 MiB of weights
    run = run_gate(pytester, root)
    peaks = {}
    for aid in ("small@1.0", "wide@1.0"):
        props = dict(run.reports[("integrity", aid)].user_properties)
        peaks[aid] = props["model_checks.worker_peak_rss_mb"]
    assert 10 < peaks["small@1.0"] < peaks["wide@1.0"]  # a worker holds at least an interpreter; the wide model more


def test_an_artifact_whose_model_was_started_on_ahead_reports_the_peak_of_its_own_requests(
    pytester: pytest.Pytester,
) -> None:
    """The next artifact's model (at most 16 MiB) is loaded while this one's checks run (plugin.verdict), and its
    answers may be read then, by a check of this one that asks its worker something new (the dynamic axes' runs):
    each answer carries the peak of its own request, and counts for the artifact whose check takes it. The artifact
    looked ahead at reports its load's peak (the figure was missing, its answers read before its first check)."""
    from fixtures import artifacts as A
    from fixtures.gate_run import run_gate
    from model_checks.plugin.verdict import LOOK_AHEAD_BYTES

    root = pytester.path / "arts"
    A.onnx_artifact(root / "a_first", onnx_models.linear(), name="a_first", limits={"dynamic_axes": ["batch"]})
    A.onnx_artifact(root / "b_ahead", onnx_models.linear(n_in=1024, n_out=3584), name="b_ahead")  # 14 MiB
    A.onnx_artifact(root / "c_last", onnx_models.linear(), name="c_last")
    assert sum(f.stat().st_size for f in (root / "b_ahead").iterdir()) <= LOOK_AHEAD_BYTES
    run = run_gate(pytester, root)
    peaks = {}
    for aid in ("a_first@1.0", "b_ahead@1.0", "c_last@1.0"):
        for check in ("integrity", "metadata", "limits"):
            props = dict(run.reports[(check, aid)].user_properties)
            assert "model_checks.worker_peak_rss_mb" in props, (check, aid, props)
            peaks[(check, aid)] = props["model_checks.worker_peak_rss_mb"]
    assert peaks[("integrity", "b_ahead@1.0")] > peaks[("integrity", "a_first@1.0")] + 10  # its 14 MiB counted there
