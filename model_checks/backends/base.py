"""The runner every backend implements: `infer` validates the feeds, then calls `infer_impl`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from model_checks.core.errors import InferenceError, ModelChecksError, runtime_error_text
from model_checks.core.lazy import lazy
from model_checks.manifest.model import TensorSpec

np = lazy("numpy")

# The input and output names a manifest declares for a model that has none of its own (a TorchScript
# archive): passed in the call by whoever read the manifest, never looked up by a backend.
Names = tuple[tuple[str, ...] | None, tuple[str, ...] | None] | None


def declared_names(manifest: Any) -> Names:
    """(input names, output names) a manifest declares, each None where it declares none; None for neither."""
    ins = tuple(t.name for t in manifest.inputs) if manifest.inputs else None
    outs = tuple(t.name for t in manifest.outputs) if manifest.outputs else None
    return (ins, outs) if ins or outs else None


def named_feeds(tensors: list[tuple[str, np.ndarray]], names: list[str]) -> dict[str, np.ndarray]:
    """Tensors read in order (ONNX test data's `input_K.pb`) as feeds: each under its own name, an unnamed one
    under the model's input name at its position (the worker names the feeds sent ahead of the model's load the
    same way, `isolation.worker.AHEAD`)."""
    return {(n or names[i] if i < len(names) else n): a for i, (n, a) in enumerate(tensors)}


class Runner:
    """A loaded model. Subclasses fill `inputs`/`outputs` from the model itself and implement `infer_impl`."""

    format: str = "?"
    path: Path
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    description: str = ""  # what runs it, where a runtime has settings worth stating ("openvino 2026.4.1 CPU, ...", TFLite: XNNPACK and threads)

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on `feeds` (input name -> array); outputs by name, in the model's order.

        Any failure is an InferenceError (a ModelChecksError) that names the model, never a bare
        runtime exception: a model that rejects its inputs fails its check, it does not crash the gate."""
        __tracebackhide__ = True
        arrays = self._checked_feeds(feeds)
        try:
            return self.infer_impl(arrays)
        except ModelChecksError:
            raise
        except Exception as e:  # onnxruntime, torch and tensorflow each raise their own types
            raise InferenceError(f"{self.path.name}: inference failed: {runtime_error_text(e)}") from e

    def infer_many(self, feeds: list[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """`infer` of each set of feeds, in order (an isolated runner sends them in one round trip)."""
        __tracebackhide__ = True
        return [self.infer(f) for f in feeds]

    def _checked_feeds(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        want = [t.name for t in self.inputs]
        missing = [n for n in want if n not in feeds]
        extra = [n for n in feeds if n not in want]
        if missing or extra:
            raise InferenceError(
                f"{self.path.name}: feeds do not match the model's inputs {want}: missing {missing}, unexpected {extra}"
            )
        return {n: np.asarray(feeds[n]) for n in want}

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the model; the runner is unusable afterwards."""


@dataclass(frozen=True)
class ModelFacts:
    """What a model is, read off the model itself, the same fields for every format.

    `optimization_leftovers` maps an optimization name to (what would remain, the offending nodes):
    where the model can show an optimization was applied, these nodes must be absent.
    """

    format: str
    precision: str
    precision_why: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    ops: Counter
    size_bytes: int
    opset: int | None = None
    opsets: dict[str, int] = field(default_factory=dict)
    optimization_leftovers: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    # the files the model is made of where its format keeps it in more than one (ONNX: with its external data), each
    # proven inside the root, in the order `sha256` covers them; empty: the model file alone
    files: tuple[Path, ...] = ()


@dataclass
class Target:
    """A model opened for timing by a backend's `timing.open_target`: `call()` runs it once on the inputs given to
    `prepare` and returns when the result is complete (on a GPU: synchronized, so a timer around it measures the
    work, not the launch)."""

    description: str
    run: Callable[[Any], Any]
    convert: Callable[[dict[str, np.ndarray]], Any]
    release: Callable[[], Any] = lambda: None
    # Stops a call in flight, from another thread, through the runtime's own cancellation (onnxruntime's
    # RunOptions.terminate, OpenVINO's InferRequest.cancel): the call then raises. None where the runtime has none.
    cancel: Callable[[], Any] | None = None
    _prepared: Any = field(default=None, init=False)

    def prepare(self, feeds: dict[str, np.ndarray]) -> None:
        self._prepared = self.convert(feeds)

    def call(self) -> Any:
        return self.run(self._prepared)

    def close(self) -> None:
        self.release()
        self._prepared = None
