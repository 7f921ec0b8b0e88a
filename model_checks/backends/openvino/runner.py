"""Running a model (OpenVINO IR or ONNX) on OpenVINO's CPU plugin, at a stated inference precision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from model_checks.backends.base import Names, Runner
from model_checks.backends.openvino.loader import DEFAULT_PRECISION, is_ir, openvino, read_model
from model_checks.core.errors import ArtifactLoadError, runtime_error_text
from model_checks.manifest.model import TensorSpec


def port_spec(port: Any, name: str | None = None) -> TensorSpec:
    """A model input or output port as a TensorSpec; a dynamic dimension is '?'."""
    ps = port.get_partial_shape()
    shape = None if ps.rank.is_dynamic else tuple(d.get_length() if d.is_static else "?" for d in ps)
    try:
        dtype = np.dtype(port.get_element_type().to_dtype()).name
    except Exception:  # an element type numpy has no name for (bf16, u4): its own name
        dtype = port.get_element_type().get_type_name()
    return TensorSpec(name=name or port.get_any_name(), dtype=dtype, shape=shape)


def version(ov: Any) -> str:
    return ov.__version__.split("-")[0]  # "2026.4.1-22982-e213a14..." -> "2026.4.1"


def compile_config(threads: int | None, precision: str) -> dict[str, Any]:
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


class OpenVinoRunner(Runner):
    format = "openvino"

    def __init__(self, path: Path, root: Path, threads: int | None = None, precision: str = DEFAULT_PRECISION):
        ov = openvino()
        self.path = path
        model = read_model(path, root)
        self._ports_in = list(model.inputs)
        self._ports_out = list(model.outputs)
        if is_ir(path):
            self.inputs = tuple(port_spec(p) for p in self._ports_in)
            self.outputs = tuple(port_spec(p) for p in self._ports_out)
        else:  # ONNX: the graph's own specs (named dynamic dimensions, index ranges), off the parse read_model shared
            from model_checks.backends.onnx.facts import input_specs, value_spec
            from model_checks.backends.onnx.loader import graph_of

            g = graph_of(path, root).graph  # without the weights' bytes: OpenVINO reads those itself
            self.inputs, self.outputs = input_specs(g), tuple(value_spec(v) for v in g.output)
        try:
            self.compiled = ov.Core().compile_model(model, "CPU", compile_config(threads, precision))
        except Exception as e:
            raise ArtifactLoadError(
                f"{path.name}: OpenVINO cannot compile it for the CPU: {runtime_error_text(e)}"
            ) from None
        ran = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = getattr(ran, "get_type_name", lambda: str(ran))()
        self.description = f"openvino {version(ov)} CPU, INFERENCE_PRECISION_HINT={self.precision}"
        self.request = self.compiled.create_infer_request()

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self.request.infer({i: feeds[spec.name] for i, spec in enumerate(self.inputs)})
        return {spec.name: np.array(result[i]) for i, spec in enumerate(self.outputs)}

    def close(self) -> None:
        self.request = self.compiled = None  # type: ignore[assignment]


def load(path: Path, root: Path, threads: int | None = None, names: Names = None) -> OpenVinoRunner:
    """An IR's and an ONNX model's names come from the model itself; `names` is not needed."""
    return OpenVinoRunner(path, root, threads)
