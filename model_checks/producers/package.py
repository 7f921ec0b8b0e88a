"""`package`: an artifact directory whose metadata.yaml is measured from the model, so the gate passes it by
construction and a later hand edit that lies is caught.

Every claim comes from the gate's own reading of the model (`backends.<format>.facts.model_facts`): opset,
precision, inputs and outputs; the sha256 of the file; the installed runtime; `latency_ms` (p50 at batch 1 on
`threads` threads) and, with eval data and a reference model, `accuracy_drop`. Re-running on the same inputs
writes the same manifest, latency aside.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from model_checks.backends.registry import runtime_package
from model_checks.checks.accuracy import accuracy
from model_checks.core.errors import ModelChecksError
from model_checks.core.fileio import write_text
from model_checks.core.inputs import load_npz
from model_checks.core.pool import ModelPool
from model_checks.manifest import TensorSpec, guess_format, parse_manifest
from model_checks.producers.figures import RUNS, Timing, sha256, target_timing
from model_checks.producers.npz import write_npz
from model_checks.producers.verify import ProducerError
from model_checks.safety.paths import resolve_inside

TENSOR_DTYPES = (
    "float16",
    "float32",
    "float64",
    "bfloat16",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "int64",
    "uint32",
    "uint64",
    "bool",
)
SAMPLES = "samples.npz"
EVAL = "eval.npz"


@dataclass(frozen=True)
class Packaged:
    """The artifact written: its directory, the manifest as written, and what was measured for it."""

    dir: Path
    manifest: dict[str, Any]
    timing: Timing
    accuracy: float | None = None
    reference_accuracy: float | None = None

    def __str__(self) -> str:
        m = self.manifest
        acc = f", accuracy {self.accuracy:.4f}" if self.accuracy is not None else ""
        if "accuracy_drop" in m:
            acc += f" (drop {m['accuracy_drop']:+.4f} against {m['reference']['path']})"
        return f"{self.dir}/metadata.yaml: {m['model_name']}@{m['version']} {m.get('precision', '')} {m['format']}, latency p50 {m['latency_ms']} ms{acc}"


def runtime_of(fmt: str) -> str:
    """`<package> <version>` of the installed runtime for `fmt` (a bare version: >= it, same major)."""
    package = runtime_package(fmt)
    if package is None:
        raise ModelChecksError(
            f"no runtime package is declared for format {fmt!r} (Framework.runtime in its backend folder)"
        )
    from packaging.version import Version

    return f"{package} {Version(md.version(package)).base_version}"


def recorded_machine(calibration_us: float | None, runtime: str) -> dict[str, Any]:
    """`machine:` as the manifest records it: where latency_ms was measured, and the calibration workload's p50
    there, so a gate on another machine compares the claim on its own scale."""
    from model_checks.core.machine import this_machine

    m = this_machine(providers=False)
    out: dict[str, Any] = {"cpu": m.cpu, "isa": list(m.isa)}
    if calibration_us is not None:
        out["calibration_us"] = round(calibration_us, 2)
    out["runtime"] = runtime
    return out


def _ranged(t: TensorSpec, value_range: Any) -> TensorSpec:
    """`t` with its range: `value_range` is one pair for the float inputs, or ranges by input name; an integer
    input without one keeps the range the graph proves (an embedding's rows)."""
    # a quantized input (a full-integer TFLite model's) is fed real values: it takes the float range
    integer = t.dtype is not None and t.dtype.startswith(("int", "uint")) and t.quantization is None
    r = value_range.get(t.name) if isinstance(value_range, Mapping) else (None if integer else value_range)
    return replace(t, range=tuple(r)) if r is not None else t


def _spec(t: Any, layout: str | None = None) -> dict[str, Any]:
    """A declared input or output as written in metadata.yaml (integer ranges as integers)."""
    d: dict[str, Any] = {"name": t.name}
    tensor = t.dtype in TENSOR_DTYPES  # a sequence of maps (skl2onnx's ZipMap) has no dtype the schema can name
    if t.dtype and tensor:
        d["dtype"] = t.dtype
    if t.shape is not None and tensor:
        d["shape"] = list(t.shape)
    if layout:
        d["layout"] = layout
    integer = t.dtype is not None and t.dtype.startswith(("int", "uint")) and getattr(t, "quantization", None) is None
    r = t.range
    if r is not None:
        d["range"] = [int(r[0]), int(r[1])] if integer else [float(r[0]), float(r[1])]
    return d


def _write_data(src: Any, dst: Path, what: str, to_arrays: Any) -> None:
    """Copy an .npz into the artifact, or write in-memory data (`to_arrays(src)`) as a reproducible .npz."""
    if isinstance(src, (str, Path)):
        src = Path(src)
        if not src.is_file():
            raise ProducerError(f"{what}: {src} does not exist")
        if src.resolve() != dst.resolve():
            shutil.copyfile(src, dst)
    else:
        write_npz(dst, to_arrays(src))


def _samples_arrays(samples: Any, inputs: Sequence[TensorSpec]) -> Any:
    if isinstance(samples, Mapping):
        return dict(samples)
    if len(inputs) != 1:
        raise ProducerError(f"samples: the model has {len(inputs)} inputs; pass a dict of arrays named by input")
    return {inputs[0].name: np.asarray(samples)}


def _loadable(model: Path) -> None:
    """An ONNX model onnx.checker passes and onnxruntime loads, checked before anything is copied or written."""
    import onnx

    from model_checks.backends.onnx.runtime import onnxruntime

    ort = onnxruntime()

    from model_checks.backends.onnx.runner import session_options
    from model_checks.producers.verify import _first_line

    try:
        onnx.checker.check_model(str(model))
    except (onnx.checker.ValidationError, ValueError) as e:
        raise ProducerError(
            f"package: {model.name} is not a valid ONNX model (onnx.checker: {_first_line(e)}); nothing was written"
        ) from None
    try:
        ort.InferenceSession(str(model), session_options(), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ProducerError(
            f"package: onnxruntime cannot load {model.name} ({_first_line(e)}); nothing was written"
        ) from None


def package(
    model: str | Path,
    out_dir: str | Path,
    *,
    model_name: str,
    version: str = "1.0",
    root: str | Path | None = None,
    reference: str | Path | None = None,
    samples: Any = None,
    eval_data: Any = None,
    optimization: Sequence[str] = (),
    tolerance: Mapping[str, Any] | None = None,
    limits: Mapping[str, Any] | None = None,
    budgets: Mapping[str, Any] | None = None,
    serving: Mapping[str, Any] | None = None,
    input_range: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    layout: str | None = None,
    inputs: Sequence[TensorSpec] | None = None,
    outputs: Sequence[TensorSpec] | None = None,
    roundtrip: Sequence[str] = (),
    threads: int = 1,
    runs: int = RUNS,
) -> Packaged:
    """Write the artifact directory `out_dir`: the model (copied unless it is already there), metadata.yaml,
    and `samples.npz` / `eval.npz` when given (a path, an array or dict of arrays, or for eval an (x, y) pair).

    `root` is the artifacts root every path must stay inside (default: out_dir's parent); `reference` a model
    file (a path from here) whose path is written relative to out_dir. `optimization` names the passes and
    producer steps applied; `tolerance`, `limits` and `budgets` are written as given. `inputs`/`outputs` declare the
    interface where the model cannot name it (a TorchScript archive has no input names or shapes: pass its
    ONNX twin's `model_facts(...).inputs`); by default it is read off the model. `roundtrip` opts the artifact
    into the conversions the gate checks (`("torch",)`).
    """
    model, out_dir = Path(model), Path(out_dir)
    if not model.is_file():
        raise ProducerError(f"model: {model} does not exist")
    fmt = guess_format(model.name)
    if fmt is None:
        raise ProducerError(
            f"model: cannot tell the format of {model.name} from its name (.onnx, .pt, .keras, .h5, .tflite)"
        )
    root = Path(root) if root is not None else out_dir.parent
    resolve_inside(root, out_dir, ".", "out_dir")  # the artifact itself must lie inside the root
    if fmt == "onnx":
        _loadable(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / ("model" + model.suffix.lower())
    if model.resolve() != dst.resolve():
        shutil.copyfile(model, dst)
    ref_text = None
    if reference is not None:
        ref = Path(reference)
        if not ref.is_file():
            raise ProducerError(f"reference: {ref} does not exist")
        ref_text = Path(os.path.relpath(ref.resolve(), out_dir.resolve())).as_posix()
        resolve_inside(root, out_dir, ref_text, "reference")

    with ModelPool(trust_code=True) as pool:  # we trust the model we were asked to package
        facts = pool.facts(dst, fmt, root)
        runner = pool.runner(dst, fmt, root, threads=threads)
        declared_in = [_ranged(s, input_range) for s in (inputs or facts.inputs)]
        t = target_timing(dst, fmt, root, declared_in, batch=1, threads=threads, runs=runs)
        acc = ref_acc = None
        if samples is not None:
            _write_data(samples, out_dir / SAMPLES, "samples", lambda s: _samples_arrays(s, declared_in))
        if eval_data is not None:
            _write_data(
                eval_data, out_dir / EVAL, "eval_data", lambda e: {"x": np.asarray(e[0]), "y": np.asarray(e[1])}
            )
            data = load_npz(out_dir / EVAL, "eval_data")
            if "x" not in data or "y" not in data:
                raise ProducerError(f"eval_data: needs arrays x and y (it has {', '.join(data)})")
            acc = accuracy(runner, data["x"], data["y"])[0]
            if reference is not None:
                ref = Path(reference).resolve()
                ref_acc = accuracy(pool.runner(ref, guess_format(ref.name) or "onnx", root), data["x"], data["y"])[0]

    manifest: dict[str, Any] = {
        "schema": 1,
        "model_name": model_name,
        "version": str(version),
        "file": dst.name,
        "format": fmt,
        "sha256": sha256(dst),
    }
    if facts.opset is not None:
        manifest["opset"] = facts.opset
    manifest["precision"] = facts.precision
    if optimization:
        manifest["optimization"] = list(optimization)
    manifest["runtime"] = runtime_of(fmt)
    manifest["latency_ms"] = float(f"{t.p50_ms:.3g}")  # three significant digits: 0.0104, not 0.01
    if acc is not None and ref_acc is not None:
        manifest["accuracy_drop"] = round(ref_acc - acc, 4)
    manifest["machine"] = recorded_machine(t.calibration_us, manifest["runtime"])
    manifest["inputs"] = [_spec(s, layout) for s in declared_in]
    manifest["outputs"] = [_spec(s) for s in (outputs or facts.outputs)]
    if ref_text:
        manifest["reference"] = {"path": ref_text}
    if samples is not None:
        manifest["samples"] = SAMPLES
    if eval_data is not None:
        manifest["eval_data"] = EVAL
    if tolerance:
        manifest["tolerance"] = dict(tolerance)
    if limits:
        manifest["limits"] = dict(limits)
    if budgets:
        manifest["budgets"] = dict(budgets)
    if roundtrip:
        manifest["roundtrip"] = list(roundtrip)
    if serving:
        manifest["serving"] = dict(serving)
    parse_manifest(manifest, f"{out_dir}/metadata.yaml")  # the schema and its cross-key rules, before writing
    write_text(out_dir / "metadata.yaml", yaml.safe_dump(manifest, sort_keys=False, default_flow_style=None, width=120))
    return Packaged(out_dir, manifest, t, acc, ref_acc)
