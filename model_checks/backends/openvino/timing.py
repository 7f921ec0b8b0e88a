"""Timing a model on OpenVINO for budgets: the CPU plugin with the budget's threads, at f32 (the precision
equivalence gates; the description says so), or the GPU plugin where OpenVINO finds one."""

from __future__ import annotations

from pathlib import Path

from model_checks.backends.base import Target
from model_checks.backends.openvino.loader import openvino
from model_checks.core.errors import DeviceUnavailable, MissingDependencyError


def load_runtime() -> None:
    openvino()


def open_target(path: Path, root: Path, device: str, threads: int | None) -> Target:
    try:
        ov = openvino()
    except MissingDependencyError as e:
        raise DeviceUnavailable(f"timing on OpenVINO needs it: {e}") from None
    if device == "gpu":
        devices = ov.Core().available_devices
        raise DeviceUnavailable(
            f"no GPU budgets on OpenVINO in this version of model-checks (OpenVINO {ov.__version__} sees "
            f"{', '.join(devices)}); budgets.gpu is measured for ONNX on onnxruntime's CUDA provider"
        )
    from model_checks.backends.openvino.runner import OpenVinoRunner

    runner = OpenVinoRunner(path, root, threads)
    request = runner.request

    def convert(feeds: dict) -> dict:
        return {i: feeds[s.name] for i, s in enumerate(runner.inputs)}

    what = f"{runner.description}, {threads or 'default'} thread(s)"
    return Target(what, run=request.infer, convert=convert, release=runner.close, cancel=request.cancel)
