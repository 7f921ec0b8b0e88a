"""What a canary asks of a worker: which release of the runtime it imported, and how long a model's calls take
there. Module-level functions, sent to the worker by `ModelPool.run_isolated`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

_LOADED: dict[tuple, Any] = {}  # runners this worker keeps for timing, so each round times calls, not loads


def runtime_version(package: str) -> str:
    """The version of `package` this process imports (the candidate's, when its directory comes first)."""
    import importlib
    import importlib.metadata

    module = importlib.import_module(package)
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return str(getattr(module, "__version__", "?"))


def time_calls(fmt: str, path: Path, root: Path, feeds: dict, n: int) -> list[float]:
    """Seconds each of `n` calls of the model on `feeds` takes, on one thread, after one untimed call."""
    from model_checks.backends import backend

    key = (fmt, str(path))
    if key not in _LOADED:
        _LOADED[key] = backend(fmt, "runner").load(path, root, threads=1)
        _LOADED[key].infer(feeds)
    runner = _LOADED[key]
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        runner.infer(feeds)
        times.append(time.perf_counter() - t0)
    return times
