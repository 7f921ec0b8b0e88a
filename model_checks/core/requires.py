"""One way to import an optional dependency: `require("matplotlib", "report")` returns the module, or raises a
MissingDependencyError that names the extra to install, never a bare ModuleNotFoundError. Every optional
import of the package and the CLI goes through here (Polygraphy's `mod.lazy_import`, in one function)."""

from __future__ import annotations

import importlib
from types import ModuleType

from model_checks.core.errors import MissingDependencyError

# top-level module -> the extra of model-checks that installs it; the frameworks' own come from their declarations
# (`Framework.modules`, backends/registry.py). The one extras table: the CLI's commands name theirs from here too.
EXTRAS: dict[str, str] = {
    "onnxconverter_common": "producers",
    "onnxscript": "producers",
    "tf2onnx": "producers",
    "tqdm": "producers",
    "sklearn": "producers",
    "skl2onnx": "producers",
    "sympy": "producers",
    "matplotlib": "report",
    "onnx2torch": "roundtrip",
    "starlette": "serving",
    "uvicorn": "serving",
    "httpx": "serving",
    "hdrh": "serving",
    "hypothesis": "dev",
    "xdist": "dev",
    "junitparser": "merge",
    "ray": "ray",
}


def extra_of(module: str) -> str | None:
    """The extra that installs `module` (a dotted name: its top-level package counts), or None."""
    from model_checks.backends.registry import extras_by_module

    top = module.split(".")[0]
    return EXTRAS.get(top) or extras_by_module().get(top)


def install_hint(module: str, extra: str | None = None) -> str:
    extra = extra or extra_of(module)
    return f"pip install 'model-checks[{extra}]'" if extra else f"pip install {module.split('.')[0]}"


def require(module: str, extra: str | None = None, purpose: str = "this") -> ModuleType:
    """Import `module`; if it (or what it imports) is missing, say which extra brings it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise missing(e, extra or extra_of(module), purpose) from None


def missing(error: ModuleNotFoundError, extra: str | None = None, purpose: str = "this") -> MissingDependencyError:
    """The MissingDependencyError for an import that failed, naming the extra (given, else known from the name)."""
    name = error.name or str(error)
    return MissingDependencyError(f"{purpose} needs {name}, which is not installed: {install_hint(name, extra)}")


def is_optional(error: ModuleNotFoundError) -> bool:
    """Whether a failed import is of a dependency one of our extras installs (not a bug of ours)."""
    return bool(error.name) and extra_of(error.name) is not None
