"""Running a TFLite model with LiteRT's interpreter on the CPU (XNNPACK on, as LiteRT applies it by default).

Quantized inputs and outputs are handled here, once for every check: an int8/uint8 input is fed real values
quantized with its own scale and zero point (or integers of its own type, passed as they are), and every
int8/uint8 output is dequantized with its own. The runner's interface therefore lists such tensors as
float32 with their `quantization`: what the gate generates, feeds and compares is real values."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from model_checks.backends.base import Names, Runner
from model_checks.backends.tflite.facts import interface
from model_checks.backends.tflite.loader import litert_version, open_model, signature_io
from model_checks.core.errors import InferenceError
from model_checks.core.quantio import dequantize, quantize
from model_checks.manifest.model import TensorSpec


def as_float(spec: TensorSpec) -> TensorSpec:
    """A quantized tensor as the gate sees it: real values in float32."""
    return replace(spec, dtype="float32") if spec.quantization is not None else spec


def describe(threads: int | None, xnnpack: bool) -> str:
    xnn = "on" if xnnpack else "off"
    return f"LiteRT {litert_version()} interpreter on the CPU, {threads or 1} thread(s), XNNPACK {xnn}"


class TFLiteRunner(Runner):
    format = "tflite"

    def __init__(self, path: Path, root: Path, threads: int | None = None, xnnpack: bool = True):
        self.path = path
        self.interp: Any
        self.interp, self.flex = open_model(path, threads, xnnpack)
        ins, outs = signature_io(self.interp)
        self._in = {n: d["index"] for n, d in ins}
        self._out = {n: d["index"] for n, d in outs}
        self._shapes = {n: tuple(int(x) for x in d["shape"]) for n, d in ins}  # as allocated now
        self.stored_inputs, self.stored_outputs = interface(self.interp)
        self.inputs = tuple(as_float(s) for s in self.stored_inputs)
        self.outputs = tuple(as_float(s) for s in self.stored_outputs)
        self.description = describe(threads, xnnpack) + (f"; {self.flex.note}" if self.flex else "")

    def _feed(self, spec: TensorSpec, a: np.ndarray) -> np.ndarray:
        q = spec.quantization
        if q is None:
            return np.ascontiguousarray(a, dtype=spec.dtype) if spec.dtype and a.dtype.name != spec.dtype else a
        if a.dtype.kind == "f":
            return quantize(a, q)
        if a.dtype == np.dtype(q.dtype):
            return a  # already stored values (a recording of the quantized model's own inputs)
        raise InferenceError(
            f"{self.path.name}: input '{spec.name}' is {q}; feed real values (float) to be quantized, or "
            f"{q.dtype} values, not {a.dtype}"
        )

    def resize(self, feeds: dict[str, np.ndarray]) -> None:
        """Resize the inputs whose shape changed (a dynamic batch), then allocate once."""
        changed = [(n, a.shape) for n, a in feeds.items() if n in self._in and self._shapes.get(n) != a.shape]
        for name, shape in changed:
            self.interp.resize_tensor_input(self._in[name], list(shape), strict=True)
            self._shapes[name] = shape
        if changed:
            self.interp.allocate_tensors()

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        interp = self.interp
        self.resize(feeds)
        for spec in self.stored_inputs:
            interp.set_tensor(self._in[spec.name], self._feed(spec, feeds[spec.name]))
        self.invoke()
        out = {}
        for spec in self.stored_outputs:
            a = interp.get_tensor(self._out[spec.name]).copy()
            out[spec.name] = dequantize(a, spec.quantization) if spec.quantization is not None else a
        return out

    def invoke(self) -> None:
        """Run the model; a Flex op that failed in the Python delegate is named with what TensorFlow said."""
        if self.flex:
            self.flex.clear()
        try:
            self.interp.invoke()
        except RuntimeError:
            why = self.flex.error() if self.flex else None
            if why:
                raise InferenceError(f"{self.path.name}: {self.flex.note}, and it failed: {why}") from None
            raise

    def close(self) -> None:
        self.interp = None


def load(path: Path, root: Path, threads: int | None = None, names: Names = None) -> TFLiteRunner:
    """`names` is for formats without names of their own; a TFLite model's come from its signature."""
    return TFLiteRunner(path, root, threads)
