"""Timing an ONNX model for budgets: onnxruntime on the CPU provider with the budget's threads, or on CUDA.
`session.run` copies the outputs to host memory before it returns: on CUDA that is the synchronization."""

from __future__ import annotations

from pathlib import Path

from model_checks.backends.base import Target
from model_checks.backends.onnx.runner import OnnxRunner
from model_checks.core.errors import DeviceUnavailable

CUDA_EP = "CUDAExecutionProvider"


def load_runtime() -> None:
    from model_checks.backends.onnx.runtime import onnxruntime

    onnxruntime()  # imported before the model is opened, so its import is not timed


def open_target(path: Path, root: Path, device: str, threads: int | None) -> Target:
    from model_checks.backends.onnx.runtime import onnxruntime

    ort = onnxruntime()

    if device == "gpu":
        available = ort.get_available_providers()
        if CUDA_EP not in available:
            raise DeviceUnavailable(
                f"no GPU for onnxruntime: {CUDA_EP} is not available (onnxruntime {ort.__version__} has "
                f"{', '.join(available)}); install onnxruntime-gpu on a machine with CUDA"
            )
        runner = OnnxRunner(path, root, threads, providers=[CUDA_EP])
        used = runner.session.get_providers()
        if not used or used[0] != CUDA_EP:  # onnxruntime falls back to the CPU when CUDA fails to load
            raise DeviceUnavailable(
                f"onnxruntime could not start {CUDA_EP} (the session runs on {', '.join(used)}): "
                "check the CUDA and cuDNN libraries"
            )
        what = f"onnxruntime {ort.__version__} {CUDA_EP}"
    else:
        runner = OnnxRunner(path, root, threads)
        what = f"onnxruntime {ort.__version__} CPUExecutionProvider, {threads or 'default'} thread(s)"
    session = runner.session
    names = [o.name for o in runner.outputs]
    options = ort.RunOptions()  # its terminate flag stops a run in flight, between nodes (a Loop's too)

    def cancel() -> None:
        options.terminate = True

    return Target(
        what,
        run=lambda feeds: session.run(names, feeds, options),
        convert=dict,
        release=runner.close,
        cancel=cancel,
    )
