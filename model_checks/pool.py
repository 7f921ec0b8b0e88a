"""Loaded models, shared across checks: each model is loaded at most once and released when its last
check is done. Works without pytest; the plugin tells it when a model's last user has finished."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model_checks.backends import backend, require_trust
from model_checks.backends.base import ModelFacts, Runner


class ModelPool:
    """A cache of runners and facts keyed by (path, format, threads)."""

    def __init__(self, trust_code: bool = False):
        self.trust_code = trust_code
        self._runners: dict[tuple[Path, str, int | None], Runner] = {}
        self._facts: dict[tuple[Path, str], ModelFacts] = {}
        self.loads: dict[Path, int] = {}  # how often each model was loaded (a test pins "at most once")

    def runner(self, path: Path, fmt: str, root: Path, threads: int | None = None) -> Runner:
        key = (path, fmt, threads)
        if key not in self._runners:
            require_trust(fmt, path.suffix, self.trust_code)
            self._runners[key] = backend(fmt, "runner").load(path, root, threads=threads)
            self.loads[path] = self.loads.get(path, 0) + 1
        return self._runners[key]

    def facts(self, path: Path, fmt: str, root: Path) -> ModelFacts:
        key = (path, fmt)
        if key not in self._facts:
            require_trust(fmt, path.suffix, self.trust_code)
            self._facts[key] = backend(fmt, "inspect").model_facts(path, root)
        return self._facts[key]

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

    def __enter__(self) -> ModelPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
