"""Running an ONNX model with onnxruntime."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from model_checks.backends.base import Names, Runner
from model_checks.backends.onnx.facts import ORT_TYPES, input_specs, value_spec
from model_checks.backends.onnx.loader import graph_of
from model_checks.core.errors import ArtifactLoadError, InferenceError, MachineLoadError, runtime_error_text

# The runner's inputs and outputs are the facts' (both `input_specs`/`value_spec` of the graph, read without the
# weights): what only needs the interface of a model not loaded yet reads its facts (checks/context.py).
INTERFACE_IS_FACTS = True


def session_options(threads: int | None = None, optimize: bool = True, spinning: bool = True):  # type: ignore[no-untyped-def]
    from model_checks.backends.onnx.runtime import onnxruntime

    ort = onnxruntime()

    so = ort.SessionOptions()
    # fatal only: onnxruntime's own error log quotes node names raw onto stderr (an escape sequence in a name would
    # act on the terminal); the same error reaches the user as an exception, whose message the gate escapes
    so.log_severity_level = 4
    if not optimize:  # the graph as written: the determinism check's "optimizations off" configuration
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    if not spinning:  # idle intra-op threads sleep between runs instead of busy-waiting (outputs unchanged)
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


class OnnxRunner(Runner):
    format = "onnx"

    def __init__(
        self,
        path: Path,
        root: Path,
        threads: int | None = None,
        providers: list[str] | None = None,
        optimize: bool = True,
        spinning: bool = True,
    ):
        from model_checks.backends.onnx.runtime import onnxruntime

        ort = onnxruntime()

        self.path = path
        graph = graph_of(path, root).graph  # checks content and external data first; never holds the weights
        self.inputs = input_specs(graph)
        self.outputs = tuple(value_spec(v) for v in graph.output)
        del graph  # onnxruntime reads the file itself (from its path: a session from bytes peaks at 2.5x the model)
        try:
            self.session = ort.InferenceSession(
                str(path), session_options(threads, optimize, spinning), providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as e:
            text = runtime_error_text(e)
            locale = _MISSING_LOCALE.search(text)
            if locale is not None:
                raise MachineLoadError(missing_locale(path, locale.group(1), text)) from None
            raise ArtifactLoadError(f"{path.name}: onnxruntime cannot open it: {text}") from None
        self._input_types = {i.name: ORT_TYPES.get(i.type) for i in self.session.get_inputs()}

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name, arr in feeds.items():
            want = self._input_types.get(name)
            if want is not None and arr.dtype != want:
                raise TypeError(f"input '{name}' is {arr.dtype}, the model wants {np.dtype(want)}")
        names = [o.name for o in self.outputs]
        return {
            o.name: as_array(o.name, v, map_value_dtype(o.dtype))
            for o, v in zip(self.outputs, self.session.run(names, feeds))
        }

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]


# StringNormalizer builds the C++ locale its `locale` attribute names (onnxruntime's default on Linux: en_US.UTF-8)
# from the locales installed on the machine: slim CI images often have none but C and POSIX.
_MISSING_LOCALE = re.compile(r"Failed to construct locale with name:(.{0,200}?):locale::")


def missing_locale(path: Path, name: str, text: str) -> str:
    """Why `path` cannot open on this machine when the locale `name` a StringNormalizer asks for is not installed."""
    return (
        f"{path.name}: onnxruntime cannot open it on this machine: a StringNormalizer in it asks for the locale "
        f"'{name}' (its `locale` attribute, or onnxruntime's default en_US.UTF-8 where it names none), which this "
        "machine does not have (`locale -a` lists those it has; a folder named by LOCPATH is searched too); on a "
        f"machine that has it the model opens. Install it here (Debian, Ubuntu: apt-get install locales, then "
        f"locale-gen {name}), or export the StringNormalizer with a locale every machine it runs on has "
        "(locale: C.UTF-8, built into glibc since 2.35)\n"
        f"    onnxruntime: {text}"
    )


def map_value_dtype(type_text: str | None) -> np.dtype | None:
    """The value dtype of a map type, in the gate's spelling (`seq(map(int64,float32))`) or onnxruntime's
    (`seq(map(int64,tensor(float)))`); None for anything else. Maps come back as Python numbers, so this
    keeps a float32 map float32."""
    if not type_text or "map(" not in type_text:
        return None
    value = type_text.rsplit(",", 1)[-1].replace("tensor(", "").rstrip(")")
    try:
        return np.dtype({"float": "float32", "double": "float64"}.get(value, value))
    except TypeError:
        return None


def as_array(name: str, value: object, map_dtype: np.dtype | None = None) -> np.ndarray:
    """An output as one array: tensors as they are; a sequence of maps (skl2onnx's ZipMap) as one row per
    item, one column per key in sorted key order; a sequence of equal tensors stacked; a map as its values
    in key order. What cannot be one array is refused by name."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, dict):
        return np.asarray([value[k] for k in sorted(value)], dtype=map_dtype)
    if isinstance(value, (list, tuple)):
        if not value:
            return np.zeros((0,), np.float32)
        if all(isinstance(v, dict) for v in value):
            keys = sorted(value[0])
            if any(sorted(v) != keys for v in value):
                raise InferenceError(
                    f"output '{name}': a sequence of maps whose keys differ from item to item; it cannot be compared as one array"
                )
            return np.asarray([[v[k] for k in keys] for v in value], dtype=map_dtype)
        arrays = [np.asarray(v) for v in value]
        if len({(a.shape, a.dtype) for a in arrays}) == 1:
            return np.stack(arrays)
        shapes = sorted({str(list(a.shape)) for a in arrays})
        raise InferenceError(
            f"output '{name}': a sequence of tensors of differing shapes ({', '.join(shapes[:4])}); it cannot be compared as one array"
        )
    return np.asarray(value)


def warm() -> None:
    """Import what the first load needs (onnx for the proto, onnxruntime), ahead of it (a worker's warm-up)."""
    import onnx  # noqa: F401

    from model_checks.backends.onnx.runtime import onnxruntime

    onnxruntime()


def load(path: Path, root: Path, threads: int | None = None, names: Names = None) -> OnnxRunner:
    """`names` is for formats without names of their own; this one's come from the model.
    The gate's checks load with `threads` unset: their sessions' idle threads sleep between runs instead of
    spinning (onnxruntime's default), so a worker that has answered does not take the core the gate's own
    process compares on (row a of bench/overhead.py: the worker's CPU 1.2 -> 0.4 s). Outputs are the same: the
    same threads split the same work. A model given a thread count (a service's) spins, as onnxruntime does by
    default; budgets time their own session (timing.py), as it ships."""
    return OnnxRunner(path, root, threads, spinning=threads is not None)
