"""Running a TorchScript module with torch on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from model_checks.backends.base import Names, Runner
from model_checks.backends.torchscript.facts import interface
from model_checks.backends.torchscript.loader import load_module, set_threads, torch_module
from model_checks.core.errors import InferenceError, runtime_error_text


def flatten_outputs(out: Any) -> tuple[list[Any], list[str] | None]:
    """A forward's result as a list of tensors, with names when it returned a dict."""
    if isinstance(out, dict):
        return list(out.values()), [str(k) for k in out]
    if isinstance(out, (list, tuple)):
        flat: list[Any] = []
        for o in out:
            flat += flatten_outputs(o)[0]
        return flat, None
    return [out], None


class TorchScriptRunner(Runner):
    format = "torchscript"

    def __init__(self, path: Path, root: Path, threads: int | None = None, names: Names = None):
        self.path = path
        self.torch = torch_module()
        set_threads(threads)
        self.module = load_module(path)
        self.inputs, self.outputs = interface(self.module, names)

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self.torch
        args = [torch.from_numpy(np.ascontiguousarray(a)) for a in feeds.values()]
        try:
            with torch.inference_mode():
                out = self.module(*args)
        except Exception as e:
            raise InferenceError(
                f"{self.path.name}: forward failed on inputs {[list(a.shape) for a in args]}: {runtime_error_text(e)}"
            ) from None
        tensors, keys = flatten_outputs(out)
        names = [o.name for o in self.outputs]
        if len(names) != len(tensors):  # the schema could not tell how many; name them by position now
            names = keys or [f"output_{i}" for i in range(len(tensors))]
        return {n: t.detach().cpu().numpy() for n, t in zip(names, tensors)}

    def close(self) -> None:
        self.module = None


def load(path: Path, root: Path, threads: int | None = None, names: Names = None) -> TorchScriptRunner:
    return TorchScriptRunner(path, root, threads, names)
