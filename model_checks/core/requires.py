"""One way to import an optional dependency: `require("matplotlib", "report")` returns the module, or raises a
MissingDependencyError that names the extra to install, never a bare ModuleNotFoundError. Every optional
import of the package and the CLI goes through here (Polygraphy's `mod.lazy_import`, in one function)."""

from __future__ import annotations

import importlib
from types import ModuleType

from model_checks.core.errors import MissingDependencyError

# top-level module -> the extra of model-checks that installs it
EXTRAS: dict[str, str] = {
    "torch": "torch",
    "tensorflow": "keras", "tf_keras": "keras", "keras": "keras", "tensorflow_model_optimization": "keras", "tensorboard": "keras",
    "onnxconverter_common": "producers", "onnxscript": "producers", "tf2onnx": "producers", "tqdm": "producers",
    "sklearn": "producers", "sympy": "producers",
    "matplotlib": "report",
    "hypothesis": "dev", "xdist": "dev",
    "junitparser": "merge", "ray": "ray", "openvino": "openvino", "ai_edge_litert": "tflite",
}


def install_hint(module: str, extra: str | None = None) -> str:
    extra = extra or EXTRAS.get(module.split(".")[0])
    return f"pip install 'model-checks[{extra}]'" if extra else f"pip install {module.split('.')[0]}"


def require(module: str, extra: str | None = None, purpose: str = "this") -> ModuleType:
    """Import `module`; if it (or what it imports) is missing, say which extra brings it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise missing(e, extra or EXTRAS.get(module.split(".")[0]), purpose) from None


def missing(error: ModuleNotFoundError, extra: str | None = None, purpose: str = "this") -> MissingDependencyError:
    """The MissingDependencyError for an import that failed, naming the extra (given, else known from the name)."""
    name = error.name or str(error)
    return MissingDependencyError(f"{purpose} needs {name}, which is not installed: {install_hint(name, extra)}")


def is_optional(error: ModuleNotFoundError) -> bool:
    """Whether a failed import is of a dependency one of our extras installs (not a bug of ours)."""
    return bool(error.name) and error.name.split(".")[0] in EXTRAS
