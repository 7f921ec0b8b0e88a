"""Running a Keras model (inference mode) or a SavedModel's serving signature with TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from model_checks.backends.base import Names, Runner
from model_checks.backends.keras.facts import interface
from model_checks.backends.keras.loader import keras_modules, load_model, serving_signature, set_threads
from model_checks.core.errors import InferenceError, runtime_error_text


class KerasRunner(Runner):
    format = "keras"

    def __init__(self, path: Path, root: Path, threads: int | None = None):
        self.path = path
        self.tf, _ = keras_modules()
        set_threads(threads)
        self.kind, self.model = load_model(path)
        self.format = "saved_model" if self.kind == "saved_model" else "keras"
        self.fn: Any = serving_signature(self.model, path) if self.kind == "saved_model" else self.model
        self.inputs, self.outputs = interface(self.kind, self.fn)

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = self.tf
        tensors = {n: tf.convert_to_tensor(a) for n, a in feeds.items()}
        try:
            if self.kind == "saved_model":
                out = self.fn(**tensors)
                return {o.name: out[o.name].numpy() for o in self.outputs}
            args = list(tensors.values())
            out = self.fn(args if len(args) > 1 else args[0], training=False)
        except Exception as e:
            raise InferenceError(
                f"{self.path.name}: the model failed on inputs {[list(a.shape) for a in feeds.values()]}: {runtime_error_text(e)}"
            ) from None
        outs = list(out.values()) if isinstance(out, dict) else (list(out) if isinstance(out, (list, tuple)) else [out])
        return {o.name: np.asarray(t) for o, t in zip(self.outputs, outs)}

    def close(self) -> None:
        self.model = self.fn = None


def load(path: Path, root: Path, threads: int | None = None, names: Names = None) -> KerasRunner:
    """`names` is for formats without names of their own; this one's come from the model."""
    return KerasRunner(path, root, threads)
