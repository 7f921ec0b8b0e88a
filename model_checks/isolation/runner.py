"""A Runner whose model lives in a worker process: the same interface, the inference done there."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from model_checks.backends.base import Names, Runner
from model_checks.isolation.workers import Workers


class IsolatedRunner(Runner):
    """Loads in the worker on creation, and again if the worker was restarted since (another model crashed it)."""

    def __init__(self, workers: Workers, path: Path, fmt: str, root: Path, threads: int | None = None, names: Names = None):
        self.workers = workers
        self.path = path
        self.format = fmt
        self._load_args = (path, fmt, root, threads, names)
        self._handle: int | None = None
        self._generation = -1
        self._ensure_loaded()

    def _ensure_loaded(self) -> int:
        worker = self.workers.worker(self.format)
        if self._handle is None or self._generation != worker.generation or not worker.alive:
            loaded = self.workers.request(self.format, "load", self._load_args, self.path)
            handle, self.inputs, self.outputs, self.description = loaded
            self._handle, self._generation = handle, worker.generation
        assert self._handle is not None
        return self._handle

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        __tracebackhide__ = True
        arrays = self._checked_feeds(feeds)  # refused here, before anything crosses the pipe
        return self.workers.request(self.format, "infer", (self._ensure_loaded(), arrays), self.path)

    def close(self) -> None:
        worker = self.workers.worker(self.format)
        if self._handle is not None and worker.alive and self._generation == worker.generation:
            try:
                worker.request("close", (self._handle,), self.path.name)
            except Exception:  # closing must never fail a test; a dead worker has released it anyway
                pass
        self._handle = None
