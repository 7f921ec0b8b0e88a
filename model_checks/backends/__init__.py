"""One folder a framework, the same module names in each: `loader` (safe load), `runner` (inference), `facts`
(facts read off the model without running it) and `timing` (a model opened for budgets on a device).
Frameworks are imported lazily, per format. Adding a framework is adding its folder, which declares itself in its
`__init__.py` (`registry.Framework`), and one line in `registry.FRAMEWORKS`."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from model_checks.backends.registry import code_reason, frameworks
from model_checks.core.errors import DeviceUnavailable, MissingDependencyError, UntrustedFormatError

if TYPE_CHECKING:
    from model_checks.backends.base import Target


@dataclass(frozen=True)
class Backend:
    package: str  # the folder: loader, runner, facts, timing
    extra: str  # what installs its framework
    family: str  # formats of one family share a runtime, and so one isolated worker


_TABLE: dict[str, Backend] = {}


def _table() -> dict[str, Backend]:
    """format -> its backend, derived from the declarations (`registry.FRAMEWORKS`) on first use, so a folder
    listed before then (a test's, a plugin's) is in it. One plain dict, which workers inherit (tests put a
    crashing backend in place of one)."""
    if not _TABLE:
        _TABLE.update({fmt: Backend(fw.package, fw.extra, fw.family) for fw in frameworks() for fmt in fw.formats})
    return _TABLE


def __getattr__(name: str) -> Any:
    if name == "BACKENDS":  # `from model_checks.backends import BACKENDS`: the table, built when first asked for
        return _table()
    raise AttributeError(f"module 'model_checks.backends' has no attribute {name!r}")


def backend(fmt: str, submodule: str) -> ModuleType:
    """`backend("onnx", "runner")`: import a backend module, naming what to install when it fails."""
    if fmt not in _table():
        raise MissingDependencyError(
            f"no backend for format {fmt!r}; known: {', '.join(_table())} "
            "(a framework is declared in its folder's __init__.py and listed in backends/registry.py)"
        )
    pkg, extra = _table()[fmt].package, _table()[fmt].extra
    try:
        return importlib.import_module(f"{pkg}.{submodule}")
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("model_checks"):
            raise MissingDependencyError(
                f"format {fmt!r} is not supported yet by this version of model-checks ({e.name})"
            ) from None
        raise MissingDependencyError(f"checking {fmt} artifacts needs {e.name}: pip install '{extra}'") from None


def family(fmt: str) -> str:
    """The runtime family of a format: the worker its models run in."""
    return _table()[fmt].family if fmt in _table() else fmt


def load_runtime(fmt: str) -> None:
    """Import the framework that runs `fmt`, so that its import is not counted as opening the model."""
    if fmt in _table():
        backend(fmt, "timing").load_runtime()


def open_target(path: Path, fmt: str, root: Path, device: str, threads: int | None, trust_code: bool = False) -> Target:
    """Open `path` for timing on `device` ("cpu" or "gpu") with `threads` intra-op threads, through its backend."""
    require_trust_for(path, fmt, trust_code)
    if fmt not in _table():
        raise DeviceUnavailable(
            f"budgets for {fmt} artifacts are not measured by this version of model-checks ({', '.join(_table())} are)"
        )
    return backend(fmt, "timing").open_target(path, root, device, threads)


def require_trust_for(path: Path, fmt: str, trust_code: bool) -> None:
    """Refuse to load `path` as `fmt` when loading it would run code it carries and code is not trusted; what
    counts is the framework's declaration (`Framework.carries_code`), which judges by content, not name."""
    why = code_reason(fmt, path)
    if why and not trust_code:
        raise UntrustedFormatError(
            f"refused to load a {fmt} model: {why}. Artifacts are untrusted by default; "
            "if this branch is trusted, run with --model-checks-trust-code (set it in CI only for trusted branches)"
        )
