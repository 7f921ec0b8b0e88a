"""An isolated model's inference with the wait for its worker awaited on the service's event loop.

Sent from the loop and awaited there (the pipe's readability, under the worker's timeout), an inference costs no
hop to a thread and back: two wake-ups fewer a request. Everything else is the worker's own request path: the same
frame over the same pipe, the same timeout (the worker killed), the same errors for a crash, a memory limit or a
hang, the same refusal to send again a model that broke its worker. Only a model already loaded in the running
worker goes this way; loading (after a crash, say) stays with the model's thread, which owns the worker (a
worker dies with the thread that started it)."""

from __future__ import annotations

import asyncio
import select
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, ClassVar, Mapping

import numpy as np

from model_checks.core.errors import WorkerBrokeError


@dataclass
class Spin:
    """A bounded busy wait for the worker's answer, kept while it pays: up to `limit_s` of polling after the request
    is written. After `OFF_AFTER` answers in a row that did not come within it (a slow model: CPU spent for nothing)
    it stops, and only one request in `PROBE_EVERY` polls, to see whether answers come that fast again. Whether an
    answer came in time is judged only by requests that polled: a wait on the event loop includes the loop's own
    wake-up, and would keep the poll off for good after one slow answer."""

    limit_s: float
    misses: int = 0  # answers in a row that did not come within the poll
    skipped: int = 0  # requests that did not poll since the last probe
    OFF_AFTER: ClassVar[int] = 4
    PROBE_EVERY: ClassVar[int] = 16

    def now(self) -> float:
        """How long this request polls."""
        if self.misses < self.OFF_AFTER:
            return self.limit_s
        self.skipped += 1
        if self.skipped < self.PROBE_EVERY:
            return 0.0
        self.skipped = 0
        return self.limit_s

    def came(self, polled_s: float, in_time: bool) -> None:
        """What the poll of `polled_s` saw: the answer (`in_time`) or not."""
        if polled_s > 0:
            self.misses = 0 if in_time else self.misses + 1


async def infer(
    runner: Any, feeds: list[Mapping[str, np.ndarray]], spin: Spin | None = None
) -> list[dict[str, np.ndarray]] | None:
    """`runner.infer_many(feeds)` awaited on the running loop: all of them in one round trip, the timeout per set of
    feeds as the gate's `infer_many` has it. None when this way does not apply (not an isolated runner, the model not
    loaded in the running worker, feeds not exactly its inputs): then the caller runs `runner.infer` on the model's
    thread, as before. The caller serializes inferences (one request on the pipe). With `spin`, an answer not there
    yet is polled for before the wait goes to the event loop (see Spin)."""
    from model_checks.isolation.runner import IsolatedRunner

    if not isinstance(runner, IsolatedRunner) or (handle := runner.handle_now()) is None:
        return None
    names = [t.name for t in runner.inputs]
    if any(len(names) != len(f) or any(n not in f for n in names) for f in feeds):
        return None  # the runner's own check words the refusal
    arrays = [{n: np.asarray(f[n]) for n in names} for f in feeds]
    workers, what, n = runner.workers, runner.path.name, len(feeds)
    workers.refuse_again(runner.path, "infer")
    worker = workers.worker(runner.format)
    try:
        conn = worker.send_request("infer", (handle, arrays if n > 1 else arrays[0]), what, n)
        try:
            # Often answered already (on two cores the worker runs while this process is still in its write), or soon
            # after (`spin`): then read it now, without a trip through the event loop; else wait for the pipe there.
            polled_s = spin.now() if spin is not None else 0.0
            ready = readable_now(conn, polled_s)
            if spin is not None:
                spin.came(polled_s, ready)
            ready = ready or await readable(conn, workers.limits.timeout_s * n)
        except asyncio.CancelledError:  # its answer would be read as the next request's: end the worker instead
            worker.stop(kill=True)
            raise
        answer = worker.answer_ready("infer", what, ready, n)
    except WorkerBrokeError as e:
        workers.broke(runner.path, "infer", e)
        raise
    return answer if n > 1 else [answer]


def readable_now(conn: Connection, spin_s: float = 0.0) -> bool:
    """Whether `conn` has something to read now, or within `spin_s` of polling (a busy wait, bounded): `conn.poll(0)`
    without the selector multiprocessing builds and closes on every call."""
    p = select.poll()
    p.register(conn.fileno(), select.POLLIN)
    if p.poll(0):
        return True
    end = time.perf_counter() + spin_s
    while time.perf_counter() < end:
        if p.poll(0):
            return True
    return False


async def readable(conn: Connection, timeout_s: float) -> bool:
    """Whether `conn` has something to read (an answer, or the end of a worker that died) within `timeout_s`."""
    loop = asyncio.get_running_loop()
    fd = conn.fileno()
    ready = loop.create_future()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(True))
    timer = loop.call_later(timeout_s, lambda: ready.done() or ready.set_result(False))
    try:
        return await ready
    finally:
        timer.cancel()
        loop.remove_reader(fd)
