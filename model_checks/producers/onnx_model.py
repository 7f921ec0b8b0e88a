"""Reading weights and running ONNX models: the weight list in graph order, and `ONNXModel`, which feeds a
model the way it wants (layout, dtype, batch dimension) and picks the GPU provider when there is one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from model_checks.backends.onnx.facts import ORT_TYPES

GPU_PROVIDERS = ("CUDAExecutionProvider", "ROCMExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider")


def weights(model: Any) -> list[tuple[str, np.ndarray]]:
    """(name, array) of every initializer, in the order the graph's nodes first use them; unused ones last."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    order: list[str] = []
    for node in model.graph.node:
        order += [n for n in node.input if n in inits and n not in order]
    order += [n for n in inits if n not in order]
    return [(n, numpy_helper.to_array(inits[n])) for n in order]


def providers(available: list[str] | None = None) -> list[str]:
    """A GPU provider first when onnxruntime has one, the CPU always last."""
    from model_checks.backends.onnx.runtime import onnxruntime

    ort = onnxruntime()

    available = ort.get_available_providers() if available is None else available
    return [p for p in GPU_PROVIDERS if p in available] + ["CPUExecutionProvider"]


def layout_of(shape: list[Any]) -> str | None:
    """`NCHW`, `NHWC` or None, judged by which side of a rank-4 shape holds a small channel count."""
    if len(shape) != 4:
        return None
    first, last = shape[1], shape[3]
    small = lambda d: isinstance(d, int) and 0 < d <= 4  # noqa: E731
    if small(first) and not small(last):
        return "NCHW"
    if small(last) and not small(first):
        return "NHWC"
    return None


class ONNXModel:
    """An ONNX model you can call with an array: `ONNXModel("m.onnx")(x)` -> the first output.

    `x` may lack the batch dimension, may be channel-last for a channel-first model (or the reverse), and
    may be any float dtype: it is converted to what the model's first input wants.
    """

    def __init__(
        self, model: str | Path | bytes, available_providers: list[str] | None = None, threads: int | None = None
    ):
        from model_checks.backends.onnx.runtime import onnxruntime

        ort = onnxruntime()

        from model_checks.backends.onnx.runner import session_options

        self.session = ort.InferenceSession(
            model if isinstance(model, bytes) else str(model),
            session_options(threads),
            providers=providers(available_providers),
        )
        first = self.session.get_inputs()[0]
        self.input_name: str = first.name
        self.input_shape: list[Any] = list(first.shape)
        self.dtype = np.dtype(ORT_TYPES.get(first.type, np.float32))
        self.layout = layout_of(self.input_shape)
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """`x` as the model wants it: batch dimension added, layout converted, dtype cast."""
        x = np.asarray(x)
        rank = len(self.input_shape)
        if x.ndim == rank - 1:
            x = x[None]
        if self.layout and x.ndim == 4:
            channels = self.input_shape[1] if self.layout == "NCHW" else self.input_shape[3]
            if self.layout == "NCHW" and x.shape[1] != channels and x.shape[3] == channels:
                x = x.transpose(0, 3, 1, 2)
            elif self.layout == "NHWC" and x.shape[3] != channels and x.shape[1] == channels:
                x = x.transpose(0, 2, 3, 1)
        if x.dtype.kind == "f" and self.dtype.kind == "f":
            x = x.astype(self.dtype, copy=False)
        return np.ascontiguousarray(x)

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """All outputs by name."""
        return dict(zip(self.output_names, self.session.run(self.output_names, {self.input_name: self.prepare(x)})))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.run(x)[self.output_names[0]]

    def accuracy(self, x: np.ndarray, y: np.ndarray, batch: int = 256) -> float:
        """Top-1 accuracy of the first output on labelled data."""
        hits = sum(
            int(np.sum(np.argmax(self(x[i : i + batch]), axis=-1) == y[i : i + batch])) for i in range(0, len(x), batch)
        )
        return hits / len(x)
