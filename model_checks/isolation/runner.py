"""A Runner whose model lives in a worker process: the same interface, the inference done there."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from model_checks.backends.base import Names, Runner
from model_checks.isolation.workers import HOLD_RELEASE_BYTES, Workers


class IsolatedRunner(Runner):
    """Loads in the worker on creation, and again if the worker was restarted since (another model crashed it)."""

    def __init__(
        self,
        workers: Workers,
        path: Path,
        fmt: str,
        root: Path,
        threads: int | None = None,
        names: Names = None,
        before_load: Callable[[IsolatedRunner], None] | None = None,
    ):
        self.workers = workers
        self.path = path
        self.format = fmt
        self._load_args = (path, fmt, root, threads, names)
        self._handle: int | None = None
        self._generation = -1
        self.resident_bytes = 0  # what loading it took in the worker (0 until loaded)
        self.before_load = before_load  # the pool's say on what else stays loaded meanwhile
        self._ensure_loaded()

    @property
    def loaded(self) -> bool:
        return self._handle is not None

    def handle_now(self) -> int | None:
        """The model's handle when it is loaded in the worker as it runs now, else None (`infer` would load it)."""
        worker = self.workers.worker(self.format)
        if self._handle is not None and self._generation == worker.generation and worker.alive:
            return self._handle
        return None

    def _ensure_loaded(self) -> int:
        if self._handle is not None:  # a worker broken by a request sent ahead is found out before choosing it
            self.workers.settle(self.format)  # (a first load reads only up to its own answer: see Workers.request)
        worker = self.workers.worker(self.format)
        if self._handle is None or self._generation != worker.generation or not worker.alive:
            if self.before_load is not None:
                self.before_load(self)
            answer = self.workers.request(self.format, "load", self._load_args, self.path)
            handle, self.inputs, self.outputs, self.description, self.resident_bytes = answer
            self._handle, self._generation = handle, worker.generation
        assert self._handle is not None
        return self._handle

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        __tracebackhide__ = True
        arrays = self._checked_feeds(feeds)  # refused here, before anything crosses the pipe
        return self.workers.request(self.format, "infer", (self._ensure_loaded(), arrays), self.path)

    def infer_many(self, feeds: list[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """All of them in one round trip (the same op and the same timeout per set of feeds as one by one)."""
        __tracebackhide__ = True
        arrays = [self._checked_feeds(f) for f in feeds]
        if self._handle is not None:  # sent ahead with the load (Workers.prefetch_infer), for these very feeds?
            names = [t.name for t in self.inputs]
            ahead = self.workers.take_infer(
                self.format, self._load_args, list(feeds), self._handle, self._generation, names, self.path
            )
            if ahead is not None:
                return ahead
        if len(arrays) == 1:
            return [self.infer(arrays[0])]
        handle = self._ensure_loaded()
        return self.workers.request(self.format, "infer", (handle, arrays), self.path, requests=len(arrays))

    def close(self) -> None:
        # Not awaited: the worker releases the model before it reads the next request, and closing never fails.
        # Until the pool drops it, a closed runner loads its model again when asked to infer (see ModelPool).
        worker = self.workers.worker(self.format)
        if self._handle is not None and worker.alive and self._generation == worker.generation:
            worker.send_quietly("close_quietly", (self._handle,), later=self.resident_bytes < HOLD_RELEASE_BYTES)
        self._handle = None
