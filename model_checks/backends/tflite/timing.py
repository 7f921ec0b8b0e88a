"""Timing a TFLite model for budgets: LiteRT's interpreter on the CPU with the budget's threads, XNNPACK on
(LiteRT's default). `invoke` returns when the outputs are written; copying them out completes the call.
Inputs are quantized once, when prepared, so a full-integer model is timed as a device runs it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from model_checks.backends.base import Target
from model_checks.core.errors import DeviceUnavailable


def load_runtime() -> None:
    if importlib.util.find_spec("ai_edge_litert") is not None:
        import ai_edge_litert.interpreter  # noqa: F401  (imported before the model is opened, so not timed)


def open_target(path: Path, root: Path, device: str, threads: int | None) -> Target:
    if importlib.util.find_spec("ai_edge_litert") is None:
        raise DeviceUnavailable("timing a TFLite model needs ai-edge-litert: pip install 'model-checks[tflite]'")
    if device == "gpu":
        raise DeviceUnavailable(
            "LiteRT's GPU delegate targets mobile GPUs (OpenCL, OpenGL ES, Metal); this version of model-checks "
            "times TFLite models on the CPU only"
        )
    from model_checks.backends.tflite.runner import TFLiteRunner

    runner = TFLiteRunner(path, root, threads)
    interp = runner.interp
    outs = [runner._out[s.name] for s in runner.stored_outputs]

    def convert(feeds: dict[str, np.ndarray]) -> Any:
        # resized and allocated once, outside the timed calls
        runner.resize({n: np.asarray(a) for n, a in feeds.items()})
        return [(runner._in[s.name], runner._feed(s, np.asarray(feeds[s.name]))) for s in runner.stored_inputs]

    def run(prepared: Any) -> Any:
        for idx, a in prepared:
            interp.set_tensor(idx, a)
        runner.invoke()
        return [interp.get_tensor(i) for i in outs]  # get_tensor copies: the outputs are complete

    return Target(runner.description, run=run, convert=convert, release=runner.close)
