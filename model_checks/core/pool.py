"""Loaded models, shared across checks: each model is loaded at most once and released when its last
check is done. Works without pytest; the plugin tells it when a model's last user has finished."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from model_checks.backends import backend, require_trust_for
from model_checks.backends.base import ModelFacts, Runner
from model_checks.isolation.limits import Limits

if TYPE_CHECKING:
    from model_checks.isolation.workers import Workers


class ModelPool:
    """A cache of runners and facts keyed by (path, format, threads)."""

    def __init__(self, trust_code: bool = False, isolation: Limits | None = None):
        self.trust_code = trust_code
        self.isolation = isolation
        self._workers: Workers | None = None
        self._runners: dict[tuple[Path, str, int | None], Runner] = {}
        self._facts: dict[tuple[Path, str], ModelFacts] = {}
        self.loads: dict[Path, int] = {}  # how often each model was loaded (a test pins "at most once")

    @property
    def workers(self) -> Workers | None:
        """The worker processes models run in when isolated (started on first use); None in process."""
        if self.isolation is not None and self._workers is None:
            from model_checks.isolation.workers import Workers

            self._workers = Workers(self.isolation)
        return self._workers

    def runner(self, path: Path, fmt: str, root: Path, threads: int | None = None) -> Runner:
        key = (path, fmt, threads)
        if key not in self._runners:
            require_trust_for(path, fmt, self.trust_code)
            if self.workers is not None:
                from model_checks.isolation.runner import IsolatedRunner

                self._runners[key] = IsolatedRunner(self.workers, path, fmt, root, threads)
            else:
                self._runners[key] = backend(fmt, "runner").load(path, root, threads=threads)
            self.loads[path] = self.loads.get(path, 0) + 1
        return self._runners[key]

    def facts(self, path: Path, fmt: str, root: Path) -> ModelFacts:
        key = (path, fmt)
        if key not in self._facts:
            require_trust_for(path, fmt, self.trust_code)
            if self.workers is not None:
                self._facts[key] = self.workers.request(fmt, "facts", (path, fmt, root), path)
            else:
                self._facts[key] = backend(fmt, "facts").model_facts(path, root)
        return self._facts[key]

    def validate(self, path: Path, fmt: str, root: Path) -> list[str]:
        """The format's own integrity check (e.g. onnx.checker), in the worker when isolated."""
        require_trust_for(path, fmt, self.trust_code)
        if self.workers is not None:
            return self.workers.request(fmt, "validate", (path, fmt, root), path)
        return backend(fmt, "facts").validate(path, root)

    def run_isolated(self, fmt: str, path: Path, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` about the model at `path`, in `fmt`'s worker when isolated (fn must be module-level
        and its result picklable): for checks that rewrite the model object itself, such as tfmot's."""
        require_trust_for(path, fmt, self.trust_code)
        if self.workers is not None:
            return self.workers.request(fmt, "call", (fn, args), path)
        return fn(*args)

    def release(self, path: Path) -> None:
        for key in [k for k in self._runners if k[0] == path]:
            self._runners.pop(key).close()
        for key in [k for k in self._facts if k[0] == path]:
            del self._facts[key]

    def loaded(self) -> list[Path]:
        return sorted({k[0] for k in self._runners})

    def close(self) -> None:
        for r in self._runners.values():
            r.close()
        self._runners.clear()
        self._facts.clear()
        if self._workers is not None:
            self._workers.close()
            self._workers = None

    def __enter__(self) -> ModelPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
