"""A worker with `Limits.linger_s` polls its pipe that long after each answer before it sleeps (a service's worker:
waking a sleeping one cost the service most of a request's CPU on a virtual machine), and no longer: an idle
service's worker goes to sleep. Without it (the gate's own workers) it sleeps at once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from model_checks.isolation.limits import Limits
from model_checks.isolation.worker import _Linger
from model_checks.isolation.workers import Workers
from model_checks.serving.service import WORKER_LINGER_S, served_pool


def test_the_poll_ends_as_soon_as_a_request_is_waiting_and_after_linger_s_when_none_comes() -> None:
    ours, theirs = socket.socketpair()
    conn = Connection(ours.detach())
    try:
        start = time.perf_counter()
        _Linger(conn, 0.2)()  # nothing comes: it polls for the whole time, then leaves the wait to recv
        assert time.perf_counter() - start >= 0.2
        theirs.sendall(b"x")
        start = time.perf_counter()
        _Linger(conn, 60.0)()  # a request is there: at once, not after a minute
        assert time.perf_counter() - start < 30
        start = time.perf_counter()
        _Linger(conn, 0.0)()  # no linger: nothing to do
        assert time.perf_counter() - start < 30
    finally:
        conn.close()
        theirs.close()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="pins two processes to one CPU (Linux)")
def test_a_worker_that_polls_against_another_process_for_its_cpu_sleeps_at_once_for_a_while() -> None:
    """A load generator on the same machine: the poll gives it the CPU at every turn, and after REST_AFTER polls in
    a row that lost time to it, the worker stops polling for REST answers instead of competing."""
    ours, theirs = socket.socketpair()
    conn = Connection(ours.detach())
    mine = os.sched_getaffinity(0)
    cpu = min(mine)
    hog = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"])
    try:
        os.sched_setaffinity(0, {cpu})  # the poll and the hog on one CPU: every turn given away is taken
        time.sleep(0.2)  # the hog is running
        linger = _Linger(conn, 0.02)
        for _ in range(_Linger.REST_AFTER):
            linger()
        assert linger.resting == _Linger.REST
        linger()  # resting: no poll at all, one answer fewer to rest for
        assert linger.resting == _Linger.REST - 1
    finally:
        os.sched_setaffinity(0, mine)
        hog.kill()
        hog.wait()
        conn.close()
        theirs.close()


def _stat(pid: int) -> tuple[str, float]:
    """(state, CPU seconds) of a process: R while it runs or waits for a CPU (a poll that yields stays R), S asleep."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return fields[0], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("linger_s", [0.0, 1.0])
def test_a_worker_polls_for_linger_s_after_an_answer_then_sleeps(tmp_path: Path, linger_s: float) -> None:
    workers = Workers(Limits(memory_mb=2048, timeout_s=60, linger_s=linger_s))
    try:
        assert workers.request("onnx", "call", (len, ([1, 2, 3],)), tmp_path / "m.onnx") == 3
        worker = workers.worker("onnx")
        assert worker.proc is not None
        pid, start = worker.proc.pid, time.monotonic()
        states, cpu = [], _stat(pid)[1]
        while time.monotonic() - start < linger_s / 2:  # within its linger: awake (running, or waiting for a CPU)
            states.append(_stat(pid)[0])
            time.sleep(0.02)
        while time.monotonic() - start < linger_s + 5 and _stat(pid)[0] != "S":  # then asleep
            time.sleep(0.02)
        state, spent = _stat(pid)[0], _stat(pid)[1] - cpu
        assert state == "S", f"still {state} {time.monotonic() - start:.1f} s after its answer (linger {linger_s} s)"
        if linger_s:
            assert "R" in states, f"asleep during its linger: {states}"
            # a busy neighbour takes CPU from the poll, never adds to it
            assert spent <= linger_s + 0.25, f"polled {spent:.2f} s of CPU for a linger of {linger_s} s"
        else:
            assert spent <= 0.1, f"a worker without linger used {spent:.2f} s of CPU while idle"
        assert workers.request("onnx", "call", (len, ([1],)), tmp_path / "m.onnx") == 1  # and it still answers
    finally:
        workers.close()


def test_a_services_worker_lingers_and_the_gates_do_not() -> None:
    pool = served_pool(False, Limits(memory_mb=1024, timeout_s=5))
    try:
        assert pool.isolation == Limits(memory_mb=1024, timeout_s=5, linger_s=WORKER_LINGER_S)
        assert 0 < WORKER_LINGER_S <= 0.01  # bounded: an idle service's worker sleeps within milliseconds
        assert pool.share_outputs is False
    finally:
        pool.close()
    assert served_pool(False, None).isolation is None  # --isolate off: no worker to linger
    assert Limits().linger_s == 0  # the gate's workers sleep as soon as they have answered
