"""Running an ONNX model with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model_checks.backends.base import Runner
from model_checks.backends.onnx.facts import ORT_TYPES, value_spec
from model_checks.backends.onnx.loader import load_proto
from model_checks.core.errors import ArtifactLoadError


def session_options(threads: int | None = None):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    return so


class OnnxRunner(Runner):
    format = "onnx"

    def __init__(self, path: Path, root: Path, threads: int | None = None, providers: list[str] | None = None):
        import onnxruntime as ort

        self.path = path
        model = load_proto(path, root, with_external=False)  # checks content and external data first
        graph_inits = {i.name for i in model.graph.initializer}
        self.inputs = tuple(value_spec(v) for v in model.graph.input if v.name not in graph_inits)
        self.outputs = tuple(value_spec(v) for v in model.graph.output)
        try:
            self.session = ort.InferenceSession(str(path), session_options(threads), providers=providers or ["CPUExecutionProvider"])
        except Exception as e:
            raise ArtifactLoadError(f"{path.name}: onnxruntime cannot open it ({type(e).__name__}: {str(e)[:300]})") from None
        self._input_types = {i.name: ORT_TYPES.get(i.type) for i in self.session.get_inputs()}

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name, arr in feeds.items():
            want = self._input_types.get(name)
            if want is not None and arr.dtype != want:
                raise TypeError(f"input '{name}' is {arr.dtype}, the model wants {np.dtype(want)}")
        names = [o.name for o in self.outputs]
        return dict(zip(names, self.session.run(names, feeds)))

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]


def load(path: Path, root: Path, threads: int | None = None) -> OnnxRunner:
    return OnnxRunner(path, root, threads)
