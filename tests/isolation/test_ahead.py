"""Requests sent ahead (issue 24): once an artifact's manifest check has passed, its worker starts on the checker,
the load and the facts while pytest goes on, and their answers come back in one wake-up. What each of them meets
(a crash, a timeout) is still reported by the check that asks for it, under that operation's name, as if sent
then; and a worker process starts before the session knows which framework it serves."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fixtures import artifacts as A
from fixtures import bad_artifacts, onnx_models
from fixtures.crash_at_backend import BACKEND as CRASH_AT_BACKEND
from fixtures.crash_at_backend import PREFIX
from fixtures.crashing import allocate, hang, segfault
from fixtures.gate_run import run_gate
from model_checks.backends import BACKENDS
from model_checks.core.errors import ModelChecksError, RuntimeCrashError, RuntimeTimeoutError
from model_checks.isolation.limits import Limits
from model_checks.isolation.workers import Worker, Workers, discard

LIMITS = Limits(memory_mb=2048, timeout_s=60)
MIB = 1024 * 1024


@pytest.fixture
def workers():  # type: ignore[no-untyped-def]
    w = Workers(LIMITS)
    yield w
    w.close()


def test_answers_come_back_in_order_and_a_crash_is_reported_by_the_request_it_broke_on(
    workers: Workers, tmp_path: Path
) -> None:
    a, b, c = (tmp_path / n for n in ("a.onnx", "b.onnx", "c.onnx"))
    workers.prefetch("onnx", "call", (allocate, (1,)), a)
    workers.prefetch("onnx", "call", (segfault, ()), b)
    workers.prefetch("onnx", "call", (allocate, (2,)), c)
    first = workers.worker("onnx").generation
    assert workers.request("onnx", "call", (allocate, (1,)), a) == MIB
    with pytest.raises(RuntimeCrashError, match=r"b\.onnx: the onnx worker died from SIGSEGV during call"):
        workers.request("onnx", "call", (segfault, ()), b)
    # sent behind the crash, never answered: asked again of a fresh worker, with nothing of the crash in its answer
    assert workers.request("onnx", "call", (allocate, (2,)), c) == 2 * MIB
    assert workers.worker("onnx").generation == first + 1


def test_a_crash_in_a_request_nobody_asked_for_yet_is_not_reported_by_the_next_one(
    workers: Workers, tmp_path: Path
) -> None:
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    workers.prefetch("onnx", "call", (segfault, ()), a)
    assert workers.request("onnx", "call", (allocate, (1,)), b) == MIB  # a fresh worker answers it
    with pytest.raises(RuntimeCrashError, match=r"a\.onnx: the onnx worker died from SIGSEGV during call"):
        workers.request("onnx", "call", (segfault, ()), a)  # told when asked for, as if sent now


def test_a_request_sent_after_the_worker_died_on_an_earlier_one_goes_to_a_fresh_worker_in_step(
    workers: Workers, tmp_path: Path
) -> None:
    """The worker dies on a request sent ahead before the next is sent: the next starts a fresh worker, and the
    fresh worker's answers are never read as the dead one's (found flaky under load before it was handled)."""
    a, b, c = (tmp_path / n for n in ("a.onnx", "b.onnx", "c.onnx"))
    workers.prefetch("onnx", "call", (allocate, (1,)), a)
    workers.prefetch("onnx", "call", (segfault, ()), b)
    proc = workers.worker("onnx").proc
    assert proc is not None
    proc.wait(60)  # dead, its death not yet read
    workers.prefetch("onnx", "call", (allocate, (3,)), c)
    with pytest.raises(RuntimeCrashError, match=r"b\.onnx: the onnx worker died from SIGSEGV during call"):
        workers.request("onnx", "call", (segfault, ()), b)
    assert workers.request("onnx", "call", (allocate, (3,)), c) == 3 * MIB
    assert workers.request("onnx", "call", (allocate, (1,)), a) == MIB  # answered before the crash


def test_a_request_sent_ahead_that_hangs_times_out_under_its_own_name(tmp_path: Path) -> None:
    workers = Workers(Limits(memory_mb=2048, timeout_s=1))
    try:
        workers.prefetch("onnx", "call", (hang, (60,)), tmp_path / "slow.onnx")
        with pytest.raises(RuntimeTimeoutError, match=r"slow\.onnx: call did not finish within 1 s; the onnx worker"):
            workers.request("onnx", "call", (hang, (60,)), tmp_path / "slow.onnx")
    finally:
        workers.close()


def test_a_load_sent_ahead_and_never_asked_for_is_released_with_its_model(
    workers: Workers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = onnx_models.save(onnx_models.linear(), tmp_path / "m.onnx")
    quiet: list[str] = []
    real = Worker.send_quietly
    monkeypatch.setattr(
        Worker, "send_quietly", lambda self, op, args, later=False: (quiet.append(op), real(self, op, args, later))
    )
    workers.prefetch("onnx", "load", (path, "onnx", tmp_path, None, None), path)
    workers.forget(path)
    assert quiet == ["close_quietly"]
    assert workers.request("onnx", "call", (allocate, (1,)), path) == MIB  # and the pipe is in step


def test_a_spare_worker_is_taken_by_the_first_framework_and_stopped_when_unclaimed(tmp_path: Path) -> None:
    workers = Workers(LIMITS)
    try:
        workers.start_spare()
        spare = workers._spare
        assert spare is not None and spare.alive
        pid = spare.proc.pid  # type: ignore[union-attr]
        w = workers.worker("onnx")
        assert w is spare and w.family == "onnx" and w.proc.pid == pid  # type: ignore[union-attr]
        assert workers.request("onnx", "call", (allocate, (1,)), tmp_path / "m.onnx") == MIB
    finally:
        workers.close()
    unclaimed = Workers(LIMITS)
    unclaimed.start_spare()
    proc, sandbox = unclaimed._spare.proc, unclaimed._sandbox  # type: ignore[union-attr]
    unclaimed.close()
    assert proc is not None and proc.poll() is not None and sandbox is not None and not sandbox.dir.exists()


def test_the_spare_goes_to_the_framework_needed_first_and_imports_its_runtime_then(tmp_path: Path) -> None:
    workers = Workers(LIMITS)
    try:
        workers.start_spare()
        spare = workers._spare
        workers.give_spare("onnx")
        assert not workers.spare_waiting and workers.worker("onnx") is spare and spare.warmed  # type: ignore[union-attr]
        workers.start_early({"onnx"})  # at collection's end: already started and warming, nothing more to send
        assert workers.request("onnx", "call", (allocate, (1,)), tmp_path / "m.onnx") == MIB
    finally:
        workers.close()


def test_the_spare_imports_numpy_before_its_framework_is_known(tmp_path: Path) -> None:
    """Every framework's worker reads tensors with numpy: the spare imports it in its warm-up, while the parent is
    still configuring and collecting, not after the first artifact's framework is known (issue 24, row a)."""
    workers = Workers(LIMITS)
    try:
        workers.start_spare()
        imported = (eval, ("'numpy' in __import__('sys').modules",))  # a builtin: its unpickling imports nothing
        assert workers.request("onnx", "call", imported, tmp_path / "m.onnx") is True
    finally:
        workers.close()


def test_a_request_with_unhashable_arguments_is_served_while_others_wait_ahead(
    workers: Workers, tmp_path: Path
) -> None:
    """An inference's arguments (dicts of arrays) are never sent ahead: looking them up among the requests that
    were must not fail (it raised TypeError whenever one was waiting)."""
    workers.prefetch("onnx", "call", (allocate, (1,)), tmp_path / "a.onnx")  # waiting, not asked for yet
    assert workers.request("onnx", "call", (len, ([1, 2, 3],)), tmp_path / "b.onnx") == 3
    assert workers.request("onnx", "call", (allocate, (1,)), tmp_path / "a.onnx") == MIB


def _idle_in_its_pipe(pid: int) -> str:
    """/proc/PID/maps once the process sleeps with its CPU time unchanged for 0.1 s: done starting, waiting on its
    pipe (a process that waits for the CPU on a loaded machine is running, not sleeping)."""
    last = None
    for _ in range(600):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        now = (fields[0], fields[11], fields[12])  # state, utime, stime
        if now[0] == "S" and now == last:
            return Path(f"/proc/{pid}/maps").read_text()
        last = now
        time.sleep(0.1)
    raise AssertionError(f"worker {pid} never went idle")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc (Linux)")
def test_an_unconfined_worker_imports_numpy_while_it_waits_for_its_setup() -> None:
    """A spare started at plugin load waits for its setup until configure: it imports numpy meanwhile, so the first
    framework's import starts from there (issue 24, rows a and d). A worker for a confined framework does not: its
    confinement needs one thread, and numpy starts OpenBLAS's."""
    spare, confined = Worker("unassigned", LIMITS), Worker("convert", LIMITS)
    try:
        for w in (spare, confined):
            w._launch()  # no setup sent
        assert spare.proc is not None and confined.proc is not None
        assert "_multiarray_umath" in _idle_in_its_pipe(spare.proc.pid)
        assert "_multiarray_umath" not in _idle_in_its_pipe(confined.proc.pid)
        assert "Threads:\t1\n" in Path(f"/proc/{confined.proc.pid}/status").read_text()
    finally:
        for w in (spare, confined):
            discard(w)


def test_a_worker_started_unconfined_refuses_to_be_confined() -> None:
    """Its numpy threads would keep unshare from confining it (the network namespace): it exits instead, and the
    request it would have served fails, rather than run a converter half confined. Never sent by the parent."""
    w = Worker("unassigned", LIMITS)
    try:
        w._launch()
        w.family = "convert"
        w._set_up()
        with pytest.raises(RuntimeCrashError, match="the convert worker died from exit status 1 during call"):
            w.request("call", (eval, ("1",)), "m.onnx")
    finally:
        discard(w)


def test_a_confined_framework_never_takes_the_spare(tmp_path: Path) -> None:
    workers = Workers(LIMITS)
    try:
        workers.start_spare()
        spare = workers._spare
        workers.give_spare("convert")  # not given: a confined worker is confined from its first instruction
        assert workers.spare_waiting
        confined = workers.worker("convert")  # its own process, confined from its first instruction
        assert confined is not spare and spare is not None and not spare.alive
    finally:
        workers.close()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The ops the parent sends ahead, and those it sends and waits on at once, in order."""
    ops: dict[str, list[str]] = {"ahead": [], "waited": []}
    real_send, real_request = Worker.send, Worker.request
    inside = []

    def send(self, op, args, what, requests=1):  # type: ignore[no-untyped-def]
        if not inside:  # request sends through send: counted once, as waited on
            ops["ahead"].append(op)
        return real_send(self, op, args, what, requests)

    def request(self, op, args, what, requests=1):  # type: ignore[no-untyped-def]
        ops["waited"].append(op)
        inside.append(op)
        try:
            return real_request(self, op, args, what, requests)
        finally:
            inside.pop()

    monkeypatch.setattr(Worker, "send", send)
    monkeypatch.setattr(Worker, "request", request)
    return ops


def test_an_artifact_costs_one_wait_on_its_worker_beyond_its_inference(
    pytester: pytest.Pytester, sent: dict[str, list[str]]
) -> None:
    root = pytester.path / "arts"
    A.onnx_artifact(root / "one", onnx_models.linear(), name="one")
    run = run_gate(pytester, root)
    assert run.outcome("integrity", "one@1.0") == "passed" and run.outcome("metadata", "one@1.0") == "passed"
    assert sent["ahead"] == ["validate", "facts", "load"]  # after test_manifest passed, before test_integrity
    assert "validate" not in sent["waited"] and "load" not in sent["waited"] and "facts" not in sent["waited"]


def test_the_checks_that_ask_say_which_operation_broke_the_worker(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model that crashes its worker in the checker, the load or the facts: sent ahead together, each crash is
    still the failure of the check that asks for that operation, named as before (`during validate`...)."""
    monkeypatch.setitem(BACKENDS, "onnx", CRASH_AT_BACKEND)  # the workers inherit this table
    root = pytester.path / "arts"
    for op in ("validate", "load", "facts"):
        m = onnx_models.linear()
        m.doc_string = f"{PREFIX}{op}:segfault"
        A.onnx_artifact(root / f"at_{op}", m, name=f"at_{op}")
    good = bad_artifacts.good_pair(root)
    run = run_gate(pytester, root)
    during = "the onnx worker died from SIGSEGV during"
    assert run.outcome("integrity", "at_validate@1.0") == "failed"
    assert f"model.onnx: {during} validate" in run.message("integrity", "at_validate@1.0")
    assert run.outcome("integrity", "at_load@1.0") == "failed"
    assert f"model.onnx: {during} load" in run.message("integrity", "at_load@1.0")
    assert run.outcome("integrity", "at_facts@1.0") == "passed"  # the checker and the load went well
    assert run.outcome("metadata", "at_facts@1.0") == "failed"
    assert f"model.onnx: {during} facts" in run.message("metadata", "at_facts@1.0")
    for aid in good:
        assert "failed" not in run.outcomes(aid).values(), run.outcomes(aid)


def _with_testdata(d: Path, model: object, named: bool = False) -> None:
    """ONNX test data beside the model (`reference.path: .`): one set, its tensors unnamed unless `named`, the
    outputs onnxruntime gives."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    x = np.random.default_rng(0).uniform(0, 1, (2, 4)).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    s = d / "test_data_set_0"
    s.mkdir()
    for path, array, name in ((s / "input_0.pb", x, "input"), (s / "output_0.pb", y, "logits")):
        t = numpy_helper.from_array(array, name if named else "")
        path.write_bytes(t.SerializeToString())
    assert isinstance(onnx.load_tensor(str(s / "input_0.pb")), onnx.TensorProto)


@pytest.mark.parametrize("named", [False, True])
def test_an_artifacts_test_data_runs_right_behind_its_load_and_nothing_is_waited_on(
    pytester: pytest.Pytester, sent: dict[str, list[str]], named: bool
) -> None:
    """Its test data is read with the manifest check, before the model's input names are known, and its inference
    sent behind the load: the worker names an unnamed tensor after the model's input at its place, as the check
    does, and the check takes that answer for its very feeds."""
    root = pytester.path / "arts"
    m = onnx_models.linear()
    A.onnx_artifact(root / "one", m, name="one", reference={"path": "."})
    _with_testdata(root / "one", m, named)
    run = run_gate(pytester, root)
    assert run.outcome("equivalence", "one@1.0") == "passed"
    props = dict(run.reports[("equivalence", "one@1.0")].user_properties)
    assert props["model_checks.rel_l2"] == 0.0
    assert sent["ahead"] == ["validate", "facts", "load", "infer"]
    assert sent["waited"] == []


def test_a_crash_in_an_inference_sent_ahead_is_the_equivalence_checks_failure(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(BACKENDS, "onnx", CRASH_AT_BACKEND)
    root = pytester.path / "arts"
    m = onnx_models.linear()
    m.doc_string = f"{PREFIX}infer:segfault"
    A.onnx_artifact(root / "at_infer", m, name="at_infer", reference={"path": "."})
    _with_testdata(root / "at_infer", m)
    run = run_gate(pytester, root)
    assert run.outcome("integrity", "at_infer@1.0") == "passed"  # the checker and the load went well
    assert run.outcome("metadata", "at_infer@1.0") == "passed"
    assert run.outcome("equivalence", "at_infer@1.0") == "failed"
    assert "model.onnx: the onnx worker died from SIGSEGV during infer" in run.message("equivalence", "at_infer@1.0")


def test_an_inference_sent_ahead_answers_only_for_its_very_feeds_on_the_load_it_followed(
    workers: Workers, tmp_path: Path
) -> None:
    import numpy as np

    path = onnx_models.save(onnx_models.linear(), tmp_path / "m.onnx")
    args = (path, "onnx", tmp_path, None, None)
    x = np.random.default_rng(0).uniform(0, 1, (2, 4)).astype(np.float32)

    def ahead() -> tuple[int, int]:
        workers.prefetch("onnx", "load", args, path)
        workers.prefetch_infer("onnx", args, [[("", x)]], path)  # unnamed: the model's first input's name
        handle = workers.request("onnx", "load", args, path)[0]
        return handle, workers.worker("onnx").generation

    handle, generation = ahead()
    expected = workers.request("onnx", "infer", (handle, {"input": x}), path)
    taken = workers.take_infer("onnx", args, [{"input": x}], handle, generation, ["input"], path)
    assert taken is not None and np.array_equal(taken[0]["logits"], expected["logits"])
    handle, generation = ahead()  # equal values in another array: not the feeds it ran, not taken
    assert workers.take_infer("onnx", args, [{"input": x.copy()}], handle, generation, ["input"], path) is None
    handle, generation = ahead()  # the check holds another load of the model: not taken
    assert workers.take_infer("onnx", args, [{"input": x}], handle + 1, generation, ["input"], path) is None
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    bad_args = (bad, "onnx", tmp_path, None, None)
    workers.prefetch("onnx", "load", bad_args, bad)
    workers.prefetch_infer("onnx", bad_args, [[("", x)]], bad)  # behind a load that fails: no model to take
    with pytest.raises(ModelChecksError):
        workers.request("onnx", "load", bad_args, bad)
    assert workers.take_infer("onnx", bad_args, [{"input": x}], handle, generation, ["input"], bad) is None
    assert workers.request("onnx", "call", (allocate, (1,)), path) == MIB  # the pipe is in step after all of it


def test_requests_sent_together_go_in_one_write_and_each_is_answered_and_reported_on_its_own(
    workers: Workers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from multiprocessing.connection import Connection

    a, b, c = (tmp_path / n for n in ("a.onnx", "b.onnx", "c.onnx"))
    workers.request("onnx", "call", (allocate, (1,)), a)  # started
    writes: list[int] = []
    real = Connection.send_bytes
    monkeypatch.setattr(Connection, "send_bytes", lambda self, buf, *r: (writes.append(len(buf)), real(self, buf, *r)))
    with workers.together("onnx"):
        workers.prefetch("onnx", "call", (allocate, (1,)), a)
        workers.prefetch("onnx", "call", (segfault, ()), b)
        workers.prefetch("onnx", "call", (allocate, (2,)), c)
        assert writes == []  # held until the end of the block
    assert len(writes) == 1
    assert workers.request("onnx", "call", (allocate, (1,)), a) == MIB
    with pytest.raises(RuntimeCrashError, match=r"b\.onnx: the onnx worker died from SIGSEGV during call"):
        workers.request("onnx", "call", (segfault, ()), b)
    assert workers.request("onnx", "call", (allocate, (2,)), c) == 2 * MIB  # lost behind the crash: asked again


def test_a_release_goes_with_the_next_write_is_done_before_its_request_and_never_reaches_a_fresh_worker(
    workers: Workers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from multiprocessing.connection import Connection

    import numpy as np

    path = onnx_models.save(onnx_models.linear(), tmp_path / "m.onnx")
    args = (path, "onnx", tmp_path, None, None)
    feeds = {"input": np.ones((1, 4), np.float32)}
    handle = workers.request("onnx", "load", args, path)[0]
    w = workers.worker("onnx")
    w.send_quietly("close_quietly", (handle,), later=True)
    assert w.proc is not None
    w.proc.kill()
    w.proc.wait(60)
    fresh = workers.request("onnx", "load", args, path)[0]  # a fresh worker
    assert fresh == handle  # its first handle has the same number: the release held for the dead one is not its
    assert workers.request("onnx", "infer", (fresh, feeds), path)["logits"].shape == (1, 3)
    writes: list[int] = []
    real = Connection.send_bytes
    monkeypatch.setattr(Connection, "send_bytes", lambda self, buf, *r: (writes.append(len(buf)), real(self, buf, *r)))
    w.send_quietly("close_quietly", (fresh,), later=True)
    assert writes == []  # held
    with pytest.raises(ModelChecksError, match="infer failed in the onnx worker"):  # released before it ran
        workers.request("onnx", "infer", (fresh, feeds), path)
    assert len(writes) == 1  # the release and the request in one write


def test_the_next_artifacts_model_is_started_on_while_this_ones_checks_run_unless_it_is_large_or_broken(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once an artifact's manifest passes, its worker also starts on the next artifact's checker, facts, load and test
    data, so that the worker's work for it overlaps this artifact's checks instead of being waited on. Not for a
    next artifact whose manifest fails (its checks say why, nothing is loaded for it), nor for one whose model holds,
    with the files beside it, more than LOOK_AHEAD_BYTES (its memory would count in this artifact's peak)."""
    from model_checks.plugin.verdict import LOOK_AHEAD_BYTES

    during: list[tuple[str, str, str]] = []  # (op, the model's folder, the test running when it was sent)
    real_send = Worker.send

    def send(self, op, args, what, requests=1):  # type: ignore[no-untyped-def]
        if op in ("validate", "facts", "load"):
            test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
            during.append((op, Path(args[0]).parent.name, test.rsplit("::", 1)[-1]))
        return real_send(self, op, args, what, requests)

    monkeypatch.setattr(Worker, "send", send)
    root = pytester.path / "arts"
    for name in ("a_first", "b_next", "c_large", "d_after", "f_last"):
        m = onnx_models.linear()
        A.onnx_artifact(root / name, m, name=name, reference={"path": "."})
        _with_testdata(root / name, m)
    (root / "c_large" / "weights.bin").write_bytes(b"\0" * (LOOK_AHEAD_BYTES + 1))  # beside its model
    A.write_manifest(root / "e_broken", {"model_name": "e_broken", "version": "1.0", "file": "gone.onnx"})
    run = run_gate(pytester, root)
    for name in ("a_first", "b_next", "c_large", "d_after", "f_last"):
        assert "failed" not in run.outcomes(f"{name}@1.0").values(), run.outcomes(f"{name}@1.0")
    assert run.outcome("manifest", "e_broken@1.0") == "failed"
    sent_in = {(op, folder): test for op, folder, test in during}
    assert len(sent_in) == len(during)  # each sent once
    for op in ("validate", "facts", "load"):
        assert sent_in[(op, "a_first")] == "test_manifest[a_first@1.0]"
        assert sent_in[(op, "b_next")] == "test_manifest[a_first@1.0]"  # looked ahead
        assert sent_in[(op, "c_large")] == "test_manifest[c_large@1.0]"  # too large to look ahead at
        assert sent_in[(op, "d_after")] == "test_manifest[c_large@1.0]"  # the large one is not loaded yet
        assert sent_in[(op, "f_last")] == "test_manifest[f_last@1.0]"  # e_broken's manifest fails: no look-ahead
    assert not any(folder == "e_broken" for _, folder, _ in during)


def test_the_manifest_check_a_look_ahead_ran_is_its_artifacts_own_and_runs_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look-ahead runs the next artifact's manifest check to learn whether its model may be started on; when it
    passes, that artifact's own test_manifest reports that result instead of running the check again. One that
    fails is run again by its own test, which says why."""
    import dataclasses

    from model_checks.checks import FIRST, registry

    ran: list[str] = []
    real = registry()[FIRST]

    def run(ctx):  # type: ignore[no-untyped-def]
        ran.append(ctx.artifact.dir.name)
        return real.run(ctx)

    monkeypatch.setitem(registry(), FIRST, dataclasses.replace(real, run=run))
    root = pytester.path / "arts"
    for name in ("a_first", "b_next", "d_after"):
        m = onnx_models.linear()
        A.onnx_artifact(root / name, m, name=name, reference={"path": "."})
        _with_testdata(root / name, m)
    A.write_manifest(root / "c_broken", {"model_name": "c_broken", "version": "1.0", "file": "gone.onnx"})
    result = run_gate(pytester, root)
    assert [result.outcome("manifest", f"{n}@1.0") for n in ("a_first", "b_next", "c_broken", "d_after")] == [
        "passed",
        "passed",
        "failed",
        "passed",
    ]
    assert "gone.onnx" in result.message("manifest", "c_broken@1.0")
    assert sorted(ran) == ["a_first", "b_next", "c_broken", "c_broken", "d_after"], ran


def _reads_of_testdata(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(the artifact's folder, the test running) for every read of an artifact's test data."""
    from model_checks.checks import context

    reads: list[tuple[str, str]] = []
    real = context.read_testdata

    def read(path, key, root=None):  # type: ignore[no-untyped-def]
        test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0].rsplit("::", 1)[-1]
        reads.append((Path(path).name if Path(path).name != "." else Path(path).resolve().name, test))
        return real(path, key, root)

    monkeypatch.setattr(context, "read_testdata", read)
    return reads


def _testdata_tree(root: Path, names: tuple[str, ...]) -> None:
    for name in names:
        m = onnx_models.linear()
        A.onnx_artifact(root / name, m, name=name, reference={"path": "."})
        _with_testdata(root / name, m)


def test_while_the_worker_starts_the_test_data_of_the_artifacts_after_the_next_is_read_once_at_the_first(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the session's first artifact the gate's own process reads ahead the test data of the artifacts after the
    next (the next is looked ahead at as ever) while their worker starts; each artifact's is read once, and one that
    cannot be read is read again by its check, which says why."""
    reads = _reads_of_testdata(monkeypatch)
    root = pytester.path / "arts"
    _testdata_tree(root, ("a_first", "b_next", "c_third", "e_last"))
    _testdata_tree(root, ("d_torn",))
    (root / "d_torn" / "test_data_set_0" / "output_0.pb").write_bytes(b"\x0a\xff\xff")  # a field longer than the file
    run = run_gate(pytester, root)
    for name in ("a_first", "b_next", "c_third", "e_last"):
        assert "failed" not in run.outcomes(f"{name}@1.0").values(), run.outcomes(f"{name}@1.0")
    assert run.outcome("equivalence", "d_torn@1.0") == "failed"
    assert "output_0.pb is not a readable TensorProto" in run.message("equivalence", "d_torn@1.0")
    first = "test_manifest[a_first@1.0]"
    assert reads == [
        ("a_first", first),
        ("b_next", first),  # the look-ahead
        ("c_third", first),  # read ahead from here on
        ("d_torn", first),
        ("e_last", first),
        ("d_torn", "test_manifest[c_third@1.0]"),  # unreadable, so not kept: the look-ahead reads it again, as before
    ], reads  # (and its check too, with the cases it compares, and says why)


def test_what_is_read_ahead_at_the_first_artifact_is_bounded(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model_checks.plugin import verdict

    monkeypatch.setattr(verdict, "PREPARE_BYTES", 1)  # one artifact's test data is more than that
    reads = _reads_of_testdata(monkeypatch)
    root = pytester.path / "arts"
    _testdata_tree(root, ("a_first", "b_next", "c_third", "d_fourth", "e_last"))
    run = run_gate(pytester, root)
    assert run.ret == 0
    assert [test.split("[")[1][:-1] for _, test in reads] == [
        "a_first@1.0",
        "a_first@1.0",
        "a_first@1.0",  # c_third's, read ahead: then the bound is passed
        "c_third@1.0",  # d_fourth's, looked ahead at from c_third's manifest check, as before
        "d_fourth@1.0",
    ], reads


def test_nothing_is_read_ahead_for_models_run_in_this_process(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = _reads_of_testdata(monkeypatch)
    root = pytester.path / "arts"
    _testdata_tree(root, ("a_first", "b_next", "c_third"))
    run = run_gate(pytester, root, "--model-checks-isolate", "off")
    assert run.ret == 0
    assert reads == [  # each at its own start or its look-ahead's, as before
        ("a_first", "test_manifest[a_first@1.0]"),
        ("b_next", "test_manifest[a_first@1.0]"),
        ("c_third", "test_manifest[b_next@1.0]"),
    ], reads


def test_a_model_that_hangs_or_crashes_while_looked_ahead_fails_its_own_checks_and_no_other(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The artifacts around one whose load hangs or crashes its worker, looked ahead while the artifact before it
    runs, keep their verdicts (that one's checks may wait for the timeout, then ask a fresh worker); the hang and the
    crash are the failures of the checks that ask for that load, as if sent then."""
    monkeypatch.setitem(BACKENDS, "onnx", CRASH_AT_BACKEND)
    root = pytester.path / "arts"
    for name, doc in (("a_good", ""), ("b_hangs", "load:hang"), ("c_crashes", "load:segfault"), ("d_good", "")):
        m = onnx_models.linear()
        m.doc_string = f"{PREFIX}{doc}" if doc else ""
        A.onnx_artifact(root / name, m, name=name, reference={"path": "."}, limits={"dynamic_axes": ["batch"]})
        _with_testdata(root / name, m)
    run = run_gate(pytester, root, "--model-checks-timeout=8")
    for good in ("a_good@1.0", "d_good@1.0"):
        outcomes = run.outcomes(good)
        assert "failed" not in outcomes.values() and outcomes["equivalence"] == "passed", outcomes
    assert run.outcome("integrity", "b_hangs@1.0") == "failed"
    assert "model.onnx: load did not finish within 8 s; the onnx worker was killed" in run.message(
        "integrity", "b_hangs@1.0"
    )
    assert run.outcome("integrity", "c_crashes@1.0") == "failed"
    assert "model.onnx: the onnx worker died from SIGSEGV during load" in run.message("integrity", "c_crashes@1.0")


def test_quiet_waits_until_every_worker_has_done_what_it_was_sent_and_keeps_the_answers(workers: Workers) -> None:
    """`Workers.quiet` (before a timed check): each worker, of every family, has answered everything sent to it; the
    answers are kept for whoever asks, a crash among them is said by the request it broke on (not by quiet), and a
    worker that died is not started again for it."""
    onnx, keras = workers.worker("onnx"), workers.worker("keras")
    slow = onnx.send("call", (time.sleep, (0.6,)), "slow")
    crash = keras.send("call", (segfault, ()), "crash")
    begun = time.monotonic()
    workers.quiet()
    assert time.monotonic() - begun >= 0.6
    assert not onnx._pending and not keras._pending
    assert onnx.answer(slow) is None
    with pytest.raises(RuntimeCrashError, match="crash: the tensorflow worker died from SIGSEGV during call"):
        keras.answer(crash)
    assert onnx.alive and not keras.alive


def test_a_timed_check_begins_with_no_worker_still_working_on_what_was_sent_ahead(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget times the model in the gate's own process. The next artifact's checker, facts, load and test data,
    sent ahead when this artifact's manifest passed, are done before it begins (in whichever worker they went to),
    so they never share the cores with the measurement. Also for the first artifact, whose workers may still be
    importing their runtimes."""
    from model_checks.checks.budgets import check as budget_check

    owed: list[int] = []
    real_measure = budget_check.measure

    def measure(ctx, *args, **kwargs):  # type: ignore[no-untyped-def]
        owed.append(sum(len(w._pending) for w in ctx.pool.workers._workers.values()))
        return real_measure(ctx, *args, **kwargs)

    monkeypatch.setattr(budget_check, "measure", measure)
    root = pytester.path / "arts"
    budgets = {"cpu": {"threads": 1, "latency_ms": {"p50": 1000.0}}}
    for name in ("a_timed", "b_next"):
        m = onnx_models.linear()
        A.onnx_artifact(root / name, m, name=name, reference={"path": "."}, budgets=budgets)
        _with_testdata(root / name, m)
    run = run_gate(pytester, root, "-m", "cpu or not gpu")
    for name in ("a_timed@1.0", "b_next@1.0"):
        assert run.outcome("latency", f"{name}-cpu") == "passed", run.outcomes(name)
    assert owed == [0, 0]


def test_no_look_ahead_at_an_artifact_whose_test_data_or_linked_files_are_large(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LOOK_AHEAD_BYTES bounds all a look-ahead reads and loads: everything under the model's folder (external
    weights may sit in a subfolder) and the ONNX test data sets it reads (in this process and in the worker), each
    file measured where a link leads; a folder of more than LOOK_AHEAD_ENTRIES entries, or with a link out of the
    root, is not measured. Such an artifact is started on at its own manifest check, as before the look-ahead, and
    the artifact after it is looked ahead at."""
    from model_checks.plugin import verdict
    from model_checks.plugin.verdict import LOOK_AHEAD_BYTES

    monkeypatch.setattr(verdict, "LOOK_AHEAD_ENTRIES", 30)

    during: list[tuple[str, str]] = []  # (the model's folder, the test running when its load was sent)
    real_send = Worker.send

    def send(self, op, args, what, requests=1):  # type: ignore[no-untyped-def]
        if op == "load":
            test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
            during.append((Path(args[0]).parent.name, test.rsplit("::", 1)[-1]))
        return real_send(self, op, args, what, requests)

    monkeypatch.setattr(Worker, "send", send)
    root = pytester.path / "arts"
    names = (
        "a_first",
        "b_big_data",
        "c_after",
        "d_linked",
        "e_next",
        "f_subfolder",
        "g_many",
        "h_next",
        "i_out",
        "j_last",
    )
    for name in names:
        m = onnx_models.linear()
        A.onnx_artifact(root / name, m, name=name, reference={"path": "."})
        _with_testdata(root / name, m)
    (root / "b_big_data" / "test_data_set_0" / "notes.bin").write_bytes(b"\0" * (LOOK_AHEAD_BYTES + 1))
    (root / "store").mkdir()
    (root / "store" / "weights.bin").write_bytes(b"\0" * (LOOK_AHEAD_BYTES + 1))
    (root / "d_linked" / "weights.bin").symlink_to("../store/weights.bin")
    (root / "f_subfolder" / "weights").mkdir()
    (root / "f_subfolder" / "weights" / "w.bin").write_bytes(b"\0" * (LOOK_AHEAD_BYTES + 1))
    for i in range(31):
        (root / "g_many" / f"note_{i}.txt").write_text("")
    (pytester.path / "elsewhere.bin").write_bytes(b"\0")  # small, but outside the root: not measured
    (root / "i_out" / "shared.bin").symlink_to("../../elsewhere.bin")
    run = run_gate(pytester, root)
    for name in ("a_first", "c_after", "e_next", "h_next", "j_last"):
        assert run.outcome("equivalence", f"{name}@1.0") == "passed", run.outcomes(f"{name}@1.0")
    assert dict(during) == {
        "a_first": "test_manifest[a_first@1.0]",
        "b_big_data": "test_manifest[b_big_data@1.0]",  # its test data is too large to read ahead
        "c_after": "test_manifest[b_big_data@1.0]",  # looked ahead
        "d_linked": "test_manifest[d_linked@1.0]",  # a link beside its model leads to a large file
        "e_next": "test_manifest[d_linked@1.0]",
        "f_subfolder": "test_manifest[f_subfolder@1.0]",  # a large file in a subfolder
        "g_many": "test_manifest[g_many@1.0]",  # too many entries to measure
        "h_next": "test_manifest[g_many@1.0]",
        "i_out": "test_manifest[i_out@1.0]",  # a link out of the root
        "j_last": "test_manifest[i_out@1.0]",
    }
