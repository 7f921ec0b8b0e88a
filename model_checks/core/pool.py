"""Loaded models, shared across checks: each model is loaded at most once and released when its last
check is done. Works without pytest; the plugin tells it when a model's last user has finished."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from model_checks.backends import backend, require_trust_for
from model_checks.backends.base import ModelFacts, Names, Runner
from model_checks.isolation.limits import Limits

if TYPE_CHECKING:
    from model_checks.isolation.workers import Workers


class ModelPool:
    """A cache of runners and facts keyed by (path, format, threads)."""

    def __init__(self, trust_code: bool = False, isolation: Limits | None = None, first: tuple[Path, ...] = ()):
        self.trust_code = trust_code
        self.isolation = isolation
        self.first = first  # what the workers import ahead of site-packages (a candidate runtime)
        self._workers: Workers | None = None
        self._confined: Workers | None = None  # the confined worker's, when models otherwise run in process
        self._runners: dict[tuple, Runner] = {}
        self._facts: dict[tuple, ModelFacts] = {}
        self.declared: dict[Path, Names] = {}
        self.loads: dict[Path, int] = {}  # how often each model was loaded (a test pins "at most once")

    @property
    def workers(self) -> Workers | None:
        """The worker processes models run in when isolated (started on first use); None in process."""
        if self.isolation is not None and self._workers is None:
            from model_checks.isolation.workers import Workers

            self._workers = Workers(self.isolation, self.first)
        return self._workers

    def declare(self, names: dict[Path, Names]) -> None:
        """Input and output names manifests declare for models that carry none (TorchScript), by model path: used
        when a model is asked for without names, as another artifact's reference. Set by the session from the
        manifests it discovered; a backend never reads a manifest."""
        self.declared.update(names)

    def runner(self, path: Path, fmt: str, root: Path, threads: int | None = None, names: Names = None) -> Runner:
        names = names or self.declared.get(path)
        key = (path, fmt, threads, names)
        if key not in self._runners:
            require_trust_for(path, fmt, self.trust_code)
            if self.workers is not None:
                from model_checks.isolation.runner import IsolatedRunner

                self._runners[key] = IsolatedRunner(self.workers, path, fmt, root, threads, names)
            else:
                self._runners[key] = backend(fmt, "runner").load(path, root, threads=threads, names=names)
            self.loads[path] = self.loads.get(path, 0) + 1
        return self._runners[key]

    def facts(self, path: Path, fmt: str, root: Path, names: Names = None) -> ModelFacts:
        names = names or self.declared.get(path)
        key = (path, fmt, names)
        if key not in self._facts:
            require_trust_for(path, fmt, self.trust_code)
            if self.workers is not None:
                self._facts[key] = self.workers.request(fmt, "facts", (path, fmt, root, names), path)
            else:
                self._facts[key] = backend(fmt, "facts").model_facts(path, root, names=names)
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

    def run_confined(self, path: Path, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` about the model at `path` in the confined worker (no network, no processes, writes only in its
        sandbox, the scrubbed environment), whatever --model-checks-isolate says: for steps that turn a model into
        code, such as onnx2torch's torch.fx module. With isolation off, a worker of its own serves it under the
        default limits."""
        workers = self.workers
        if workers is None:
            if self._confined is None:
                from model_checks.isolation.workers import Workers

                self._confined = Workers(Limits())
            workers = self._confined
        return workers.request("convert", "call", (fn, args), path)

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
        for w in (self._workers, self._confined):
            if w is not None:
                w.close()
        self._workers = self._confined = None

    def __enter__(self) -> ModelPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
