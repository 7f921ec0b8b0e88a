"""A served model's requests answered in its isolated worker, the wait for the worker awaited on the service's event
loop.

The requests go as they came (`infer_bodies`): the worker reads each body against the model's interface, answers it,
and tags its outputs with the request's id and the outputs it wants as binary data, or refuses it with the
protocol's 4xx. Parsing a client's JSON was the largest part of the service's own work a request (bench/overhead.py
row c, wrk, interleaved three times: its CPU a request 282-340 -> 241-300 us, throughput +13 % at one connection and
+10 % at four), and a stranger's request is read where the model's untrusted input already is. What comes back is
held to its shape as every answer of a worker is (workers._not_answered_bodies).

Sent from the loop and awaited there (the pipe's readability, under the worker's timeout), a round trip costs no
hop to a thread and back: two wake-ups fewer a request. Everything else is the worker's own request path: the same
pipe, the same timeout (the worker killed), the same errors for a crash, a memory limit or a hang, the same refusal
to send again a model that broke its worker. Only a model already loaded in the running worker goes this way;
loading (after a crash, say) stays with the model's thread, which owns the worker (a worker dies with the thread
that started it)."""

from __future__ import annotations

import asyncio
import select
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, ClassVar

import numpy as np

from model_checks.core.errors import ProtocolError, WorkerBrokeError


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


@dataclass
class Interface:
    """What a served model's worker reads its requests against (worker._Models.serve_as): the declared inputs and
    the output names; `sent_to` is the (worker generation, handle) it was last sent for."""

    inputs: tuple
    outputs: tuple[str, ...]
    sent_to: tuple[int, int] | None = None

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.outputs)


async def infer_bodies(
    runner: Any, bodies: list[tuple[bytes, str | None]], interface: Interface, spin: Spin | None = None
) -> list[tuple[dict[str, np.ndarray], str | None, frozenset[str]] | ProtocolError] | None:
    """A service's requests as they came (each body with its Inference-Header-Content-Length or None), read against
    `interface` and answered in the model's worker: for each, (outputs, request id, the outputs it wants as binary
    data), or the ProtocolError the protocol refuses it with. The service's process then neither parses a client's
    JSON nor frames its arrays. All of them go in one round trip, the timeout per request as the gate's `infer_many`
    has it; the caller serializes round trips (one on the pipe at a time). With `spin`, an answer not there yet is
    polled for before the wait goes to the event loop (see Spin). None when this way does not apply (not an isolated
    runner, or its model not loaded in the running worker): then the caller reads the request itself and runs
    `runner.infer` on the model's thread."""
    if (handle := _loaded(runner)) is None:
        return None
    worker = runner.workers.worker(runner.format)
    if interface.sent_to != (worker.generation, handle):  # goes with the request, in its write (Worker.send_quietly)
        worker.send_quietly("serve_as", (handle, interface.inputs, interface.outputs), later=True)
        interface.sent_to = (worker.generation, handle)
    answer = await _round_trip(runner, "infer_bodies", (handle, bodies), len(bodies), spin)
    return [
        (outs, x, frozenset(y)) if kind == "ok" else ProtocolError(x, y)
        for outs, (kind, x, y) in zip(answer.tensors, answer.tags)
    ]


def _loaded(runner: Any) -> int | None:
    """The handle of the model when `runner` is isolated and its model is loaded in the running worker, else None."""
    from model_checks.isolation.runner import IsolatedRunner

    return runner.handle_now() if isinstance(runner, IsolatedRunner) else None


async def _round_trip(runner: Any, op: str, args: tuple, n: int, spin: Spin | None) -> Any:
    """The answer to `op` for `n` requests, sent from the running loop and awaited there."""
    workers, what = runner.workers, runner.path.name
    workers.refuse_again(runner.path, "infer")
    worker = workers.worker(runner.format)
    try:
        conn = worker.send_request(op, args, what, n)
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
        return worker.answer_ready(op, what, ready, n)
    except WorkerBrokeError as e:
        workers.broke(runner.path, "infer", e)
        raise


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
