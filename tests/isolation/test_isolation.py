"""Crash isolation: a model that segfaults, aborts, exhausts memory or hangs its runtime fails its own
checks with what happened, and the session goes on with a fresh worker."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fixtures import bad_artifacts, bad_models, crashing, onnx_models
from fixtures.crash_backend import BACKEND as CRASH_BACKEND
from fixtures.gate_run import run_gate
from model_checks.backends import BACKENDS
from model_checks.core.errors import InferenceError, MemoryLimitError, RuntimeCrashError, RuntimeTimeoutError
from model_checks.core.pool import ModelPool
from model_checks.isolation.limits import Limits
from model_checks.isolation.runner import IsolatedRunner

FEEDS = {"input": np.ones((2, 4), np.float32)}
# Long enough for a worker to start, import its runtime and load a model on a 2-core machine with two busy
# processes beside it (2 s was not: loads timed out), short enough that the models that hang forever (a sleep of
# an hour, a Loop of 10**15 trips) cost the suite a few such waits.
TIMEOUT_S = 20
LIMITS = Limits(memory_mb=1024, timeout_s=TIMEOUT_S)

# what the user reads for each way of breaking the worker
CRASHES = {
    "segfault": (RuntimeCrashError, ("died from SIGSEGV during", "a segmentation fault in the runtime's native code")),
    "abort": (RuntimeCrashError, ("died from SIGABRT during", "the runtime aborted")),
    "oom": (MemoryLimitError, ("exceeded the worker's memory limit of 1024 MiB", "--model-checks-worker-memory")),
    "hang": (
        RuntimeTimeoutError,
        (
            f"did not finish within {TIMEOUT_S} s; the onnx worker was killed",
            f"--model-checks-timeout; this machine: {os.cpu_count()} CPUs, load average ",
        ),
    ),
}


@pytest.fixture
def pool(tmp_path: Path):  # type: ignore[no-untyped-def]
    with ModelPool(isolation=LIMITS) as p:
        yield p


def test_a_model_runs_in_the_worker_behind_the_runner_interface(pool: ModelPool, tmp_path: Path) -> None:
    path = onnx_models.save(onnx_models.linear(), tmp_path / "m.onnx")
    runner = pool.runner(path, "onnx", tmp_path)
    assert isinstance(runner.inner, IsolatedRunner)  # behind the pool's shared outputs
    assert [t.name for t in runner.inputs] == ["input"] and [t.name for t in runner.outputs] == ["logits"]
    assert runner.infer(FEEDS)["logits"].shape == (2, 3)
    assert pool.workers is not None and pool.workers.worker("onnx").alive
    assert pool.facts(path, "onnx", tmp_path).precision == "fp32" and pool.validate(path, "onnx", tmp_path) == []


def test_inference_errors_are_model_checks_errors(pool: ModelPool, tmp_path: Path) -> None:
    runner = pool.runner(onnx_models.save(onnx_models.linear(), tmp_path / "m.onnx"), "onnx", tmp_path)
    with pytest.raises(InferenceError, match="input 'input' is float64, the model wants float32"):
        runner.infer({"input": np.ones((2, 4))})
    with pytest.raises(InferenceError, match=r"missing \['input'\], unexpected \['x'\]"):
        runner.infer({"x": np.ones((2, 4), np.float32)})


@pytest.mark.parametrize("kind", sorted(CRASHES))
def test_a_broken_worker_is_reported_and_replaced(pool: ModelPool, tmp_path: Path, kind: str) -> None:
    runner = pool.runner(onnx_models.save(onnx_models.linear(), tmp_path / "m.onnx"), "onnx", tmp_path)
    assert pool.workers is not None
    before = pool.workers.worker("onnx").generation
    fn, args = crashing.ACTIONS[kind]
    if kind == "oom":
        args = (4096,)  # four times the limit
    elif kind == "hang":
        args = (3600,)  # forever, as far as any timeout is concerned
    error, phrases = CRASHES[kind]
    with pytest.raises(error) as info:
        pool.workers.call("onnx", fn, *args)
    for phrase in phrases:
        assert phrase in str(info.value)
    assert runner.infer(FEEDS)["logits"].shape == (2, 3)  # loaded again in a fresh worker
    assert pool.workers.worker("onnx").generation == before + 1


@pytest.mark.parametrize("margin_mib", [-1024, 1024])
def test_a_worker_killed_from_outside_names_this_machines_memory_beside_the_limit(
    tmp_path: Path, margin_mib: int
) -> None:
    """SIGKILL is most often the kernel's out-of-memory killer: with the worker's limit at or above the machine's
    memory the kernel, not the limit, stops a model, and the verdict is this machine's; the message says which."""
    import signal
    import threading

    from model_checks.core.machine import memory_mib

    memory = memory_mib()
    if memory is None:
        pytest.skip("this machine's memory cannot be read")
    with ModelPool(isolation=Limits(memory_mb=memory + margin_mib, timeout_s=TIMEOUT_S)) as pool:
        assert pool.workers is not None
        worker = pool.workers.worker("onnx")
        pool.workers.call("onnx", crashing.hang, 0)  # started
        threading.Timer(0.5, os.kill, (worker.proc.pid, signal.SIGKILL)).start()
        with pytest.raises(RuntimeCrashError) as info:
            pool.workers.call("onnx", crashing.hang, 3600)
    text = str(info.value)
    assert "died from SIGKILL during call: killed from outside (perhaps the kernel's out-of-memory killer)" in text
    assert f"This machine has {memory:,} MiB of memory" in text and "The model crashes its runtime" not in text
    if margin_mib > 0:
        assert "no more than the worker's limit: the kernel, not the limit, stops a model that needs more" in text
        assert f"Set --model-checks-worker-memory below {memory} for a verdict that names what the model needs" in text
    else:
        assert (
            "above the worker's limit, which stops a model that needs more first (memory limit exceeded): the kill"
            in text
        )
        assert "more likely came from elsewhere (other processes' memory, a job's timeout); the session goes on" in text


def test_an_illegal_instruction_names_this_machines_cpu(pool: ModelPool) -> None:
    import signal
    import threading

    from model_checks.core.machine import this_machine

    assert pool.workers is not None
    worker = pool.workers.worker("onnx")
    pool.workers.call("onnx", crashing.hang, 0)
    threading.Timer(0.5, os.kill, (worker.proc.pid, signal.SIGILL)).start()
    with pytest.raises(RuntimeCrashError) as info:
        pool.workers.call("onnx", crashing.hang, 3600)
    text = str(info.value)
    assert "died from SIGILL during call: an illegal instruction in the runtime's native code" in text
    assert "A runtime built for instructions this CPU lacks dies so on this machine only" in text
    assert f"(this machine: {this_machine(providers=False).describe()})" in text


def test_close_stops_the_workers(tmp_path: Path) -> None:
    pool = ModelPool(isolation=LIMITS)
    pool.runner(onnx_models.save(onnx_models.linear(), tmp_path / "m.onnx"), "onnx", tmp_path).infer(FEEDS)
    assert pool.workers is not None
    worker = pool.workers.worker("onnx")
    proc = worker.proc
    pool.close()
    assert proc is not None and proc.poll() is not None


def test_crashing_artifacts_fail_their_own_checks_and_the_session_goes_on(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: four artifacts break their worker through the crash backend, and two real ONNX models exhaust
    the memory limit (8 GiB asked in ConstantOfShape) or hang (a Loop of 10**15 trips); all sort before the good
    pair, so the good ones run after them."""
    monkeypatch.setitem(BACKENDS, "onnx", CRASH_BACKEND)  # the workers inherit this table
    root = pytester.path / "artifacts"
    for kind in CRASHES:
        d = root / f"crash_{kind}"
        onnx_models.save(onnx_models.linear(), d / "ref.onnx")
        bad_artifacts.model(
            d, bad_models.crashing(kind), reference={"path": "ref.onnx"}, limits={"dynamic_axes": ["batch"]}
        )
    for kind, m in (("oom", bad_models.memory_hog()), ("hang", bad_models.endless_loop())):  # real models, no hook
        d = root / f"real_{kind}"
        onnx_models.save(onnx_models.linear(n_in=1, n_out=1), d / "ref.onnx")
        bad_artifacts.model(d, m, reference={"path": "ref.onnx"}, limits={"dynamic_axes": ["batch"]})
    good = bad_artifacts.good_pair(root)
    run = run_gate(pytester, root, f"--model-checks-timeout={TIMEOUT_S}", "--model-checks-worker-memory=1024")
    cases = [(f"crash_{kind}@1.0", kind) for kind in CRASHES] + [("real_oom@1.0", "oom"), ("real_hang@1.0", "hang")]
    for aid, kind in cases:
        error, phrases = CRASHES[kind]
        assert run.outcome("integrity", aid) == "passed"  # it loads; it breaks when it runs
        for check in ("limits", "equivalence"):  # limits runs it first; equivalence hears the same account
            assert run.outcome(check, aid) == "failed"
            message = run.message(check, aid)
            for phrase in (f"{check}: {aid}: {error.what}", *phrases):
                assert phrase in message, f"{aid}, {check}: {phrase!r} not in {message}"
        assert "not retried: this model already did this earlier in the session" in run.message("equivalence", aid)
    for aid in good:
        outcomes = run.outcomes(aid)
        assert "failed" not in outcomes.values() and outcomes["accuracy"] == "passed", outcomes
    assert run.written_outside() == []


def test_isolation_off_runs_models_in_process(pytester: pytest.Pytester) -> None:
    root = pytester.path / "artifacts"
    good = bad_artifacts.good_pair(root)
    run = run_gate(pytester, root, "--model-checks-isolate=off")
    assert run.outcome("equivalence", good[1]) == "passed"
    assert ModelPool(isolation=None).workers is None


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("--model-checks-isolate", "thread", "invalid choice: 'thread' (choose from 'process', 'off')"),
        ("--model-checks-timeout", "-3", "'-3' is not a positive number of seconds"),
        ("--model-checks-worker-memory", "lots", "'lots' is not a positive number of MiB"),
    ],
)
def test_isolation_options_name_a_bad_value(pytester: pytest.Pytester, option: str, value: str, error: str) -> None:
    pytester.mkdir("artifacts")
    result = pytester.runpytest("--model-checks", "artifacts", f"{option}={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option}: {error}*"])
