"""One folder a framework, the same module names in each: `loader` (safe load), `runner` (inference), `facts`
(facts read off the model without running it) and `timing` (a model opened for budgets on a device).
Frameworks are imported lazily, per format. Adding a framework is adding its folder and one line in BACKENDS."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from model_checks.core.errors import DeviceUnavailable, MissingDependencyError, UntrustedFormatError

if TYPE_CHECKING:
    from model_checks.backends.base import Target


@dataclass(frozen=True)
class Backend:
    package: str  # the folder: loader, runner, facts, timing
    extra: str  # what installs its framework
    family: str  # formats of one family share a runtime, and so one isolated worker


BACKENDS: dict[str, Backend] = {
    "onnx": Backend("model_checks.backends.onnx", "model-checks", "onnx"),
    "torchscript": Backend("model_checks.backends.torchscript", "model-checks[torch]", "torch"),
    "keras": Backend("model_checks.backends.keras", "model-checks[keras]", "tensorflow"),
    "saved_model": Backend("model_checks.backends.keras", "model-checks[keras]", "tensorflow"),
    "openvino": Backend("model_checks.backends.openvino", "model-checks[openvino]", "openvino"),
    "tflite": Backend("model_checks.backends.tflite", "model-checks[tflite]", "litert"),
}

CODE_FORMATS_WHY = {
    "torchscript": "a TorchScript archive carries code that runs when it loads",
    "saved_model": "a SavedModel carries TensorFlow functions that run when it loads",
    "keras-h5": "a Keras .h5 file can hold Lambda layers whose marshalled bytecode runs when it loads",
}


def backend(fmt: str, submodule: str) -> ModuleType:
    """`backend("onnx", "runner")`: import a backend module, naming what to install when it fails."""
    if fmt not in BACKENDS:
        raise MissingDependencyError(f"no backend for format {fmt!r}; known: {', '.join(BACKENDS)}")
    pkg, extra = BACKENDS[fmt].package, BACKENDS[fmt].extra
    try:
        return importlib.import_module(f"{pkg}.{submodule}")
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("model_checks"):
            raise MissingDependencyError(f"format {fmt!r} is not supported yet by this version of model-checks ({e.name})") from None
        raise MissingDependencyError(f"checking {fmt} artifacts needs {e.name}: pip install '{extra}'") from None


def family(fmt: str) -> str:
    """The runtime family of a format: the worker its models run in."""
    return BACKENDS[fmt].family if fmt in BACKENDS else fmt


def load_runtime(fmt: str) -> None:
    """Import the framework that runs `fmt`, so that its import is not counted as opening the model."""
    if fmt in BACKENDS:
        backend(fmt, "timing").load_runtime()


def open_target(path: Path, fmt: str, root: Path, device: str, threads: int | None, trust_code: bool = False) -> Target:
    """Open `path` for timing on `device` ("cpu" or "gpu") with `threads` intra-op threads, through its backend."""
    require_trust_for(path, fmt, trust_code)
    if fmt not in BACKENDS:
        raise DeviceUnavailable(f"budgets for {fmt} artifacts are not measured by this version of model-checks (onnx, torchscript, keras and tflite are)")
    return backend(fmt, "timing").open_target(path, root, device, threads)


def carries_code(fmt: str, path_suffix: str) -> str | None:
    """Why loading this artifact would run code it carries, or None for a pure data format."""
    if fmt == "keras" and path_suffix.lower() == ".h5":
        return CODE_FORMATS_WHY["keras-h5"]
    return CODE_FORMATS_WHY.get(fmt)


def require_trust_for(path: Path, fmt: str, trust_code: bool) -> None:
    """`require_trust`, judged by what the file holds rather than its name: tf-keras loads anything that
    is not a `.keras` zip archive with its legacy loader, which runs the code an HDF5 file or a SavedModel
    folder carries, so a Keras model named `model.keras` that is not a zip counts as `.h5`, and a folder as
    a SavedModel."""
    if fmt == "keras":
        if path.is_dir():
            fmt = "saved_model"
        elif path.suffix.lower() != ".h5":
            from model_checks.safety.sniff import sniff

            if path.is_file() and sniff(path) != "zip":
                require_trust(fmt, ".h5", trust_code)
    if fmt == "tflite" and not trust_code and path.is_file():
        # a flatbuffer carries no Python; only Flex and custom ops bring code from outside the runtime
        from model_checks.backends.tflite.loader import trust_reason

        if why := trust_reason(path):
            raise UntrustedFormatError(
                f"refused to load a tflite model: {why}. Artifacts are untrusted by default; if this branch is trusted, "
                "run with --model-checks-trust-code (set it in CI only for trusted branches)"
            )
    require_trust(fmt, path.suffix, trust_code)


def require_trust(fmt: str, path_suffix: str, trust_code: bool) -> None:
    why = carries_code(fmt, path_suffix)
    if why and not trust_code:
        raise UntrustedFormatError(
            f"refused to load a {fmt} model: {why}. Artifacts are untrusted by default; "
            "if this branch is trusted, run with --model-checks-trust-code (set it in CI only for trusted branches)"
        )
