"""The runtimes an ONNX artifact must hold on (`runtimes:` in metadata.yaml or policy.yaml): onnxruntime always,
OpenVINO's CPU plugin, and onnxruntime's GPU providers where a GPU exists. Each runtime is a backend format (whose
worker runs it) and, for a GPU provider, the execution provider it asks onnxruntime for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT = "onnxruntime"


@dataclass(frozen=True)
class Runtime:
    name: str
    backend: str  # the backend format that runs an ONNX file on it (its worker family)
    provider: str | None = None  # onnxruntime's execution provider, for the GPU providers
    package: str = ""  # what a GPU provider needs installed beside it (a runtime with its own backend: its extra)


RUNTIMES: dict[str, Runtime] = {
    "onnxruntime": Runtime("onnxruntime", "onnx"),
    "openvino": Runtime("openvino", "openvino"),  # its extra is the OpenVINO backend's declaration
    "cuda": Runtime("cuda", "onnx", "CUDAExecutionProvider", "onnxruntime-gpu"),
    "tensorrt": Runtime("tensorrt", "onnx", "TensorrtExecutionProvider", "onnxruntime-gpu"),
}


def declared(manifest: Any) -> tuple[str, ...]:
    """The runtimes an artifact is gated on (`Manifest.runtimes`): onnxruntime first, then the declared ones."""
    return manifest.runtimes


def unavailable(runtime: str) -> str | None:
    """Why `runtime` cannot run on this machine (a skip reason), or None. Only the GPU providers can be missing:
    OpenVINO missing is an error that names its extra, since the manifest asked for it."""
    rt = RUNTIMES[runtime]
    if rt.provider is None:
        return None
    from model_checks.backends.onnx.runtime import onnxruntime

    ort = onnxruntime()

    have = ort.get_available_providers()
    if rt.provider in have:
        return None
    return (
        f"runtime {runtime}: {rt.provider} is not available here "
        f"(onnxruntime {ort.__version__} has {', '.join(have)}); "
        f"it runs where a GPU and {rt.package} are installed"
    )


def provider_outputs(path: Path, root: Path, provider: str, feeds: list[dict]) -> tuple[str, list[dict]]:
    """Run `feeds` through onnxruntime on `provider` (in the onnx worker when isolated): (what ran, outputs)."""
    from model_checks.backends.onnx.runner import OnnxRunner
    from model_checks.core.errors import ArtifactLoadError

    runner = OnnxRunner(path, root, providers=[provider])
    used = runner.session.get_providers()
    if not used or used[0] != provider:
        raise ArtifactLoadError(f"onnxruntime could not start {provider} (the session runs on {', '.join(used)})")
    try:
        from model_checks.backends.onnx.runtime import onnxruntime

        ort = onnxruntime()

        return f"onnxruntime {ort.__version__} {provider}", [runner.infer(f) for f in feeds]
    finally:
        runner.close()
