"""onnxruntime quantization: dynamic (int8 or uint8 weights, activations quantized at run time) and static
int8 in QDQ format (calibrated on real inputs), each after the pre-processing onnxruntime recommends
(`quant_pre_process`: symbolic shape inference, graph optimization, ONNX shape inference).

The settings follow the CPU the model is for (`target`, onnxruntime's own guidance in `quantize_static`'s
docstring): by default `portable`, 7-bit weights (`reduce_range`), whose 16-bit pair sums cannot saturate in the
U8S8 kernels (VPMADDUBSW) of x86 CPUs without VNNI, so the model gives the same answers on every CPU.

Nothing is written until the result has passed `verify.verified` (onnx.checker, onnxruntime, and its outputs
against the source's under a tolerance) and at least one weight was quantized. Every temporary file, the ones
onnxruntime's shape inference drops in the working directory included, lives in a private directory that is
removed."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from model_checks.producers.calibration import CalibrationReader
from model_checks.producers.verify import (
    ProducerError,
    _first_line,
    seeded_feeds,
    source_outputs,
    verified,
)

WEIGHT_TYPES = ("int8", "uint8")
METHODS = ("minmax", "entropy", "percentile")
# Dynamic quantization of Conv makes ConvInteger, which onnxruntime's CPU provider runs only with uint8
# weights; so int8 dynamic quantizes the matrix products, and uint8 may take Conv too.
DYNAMIC_OPS = {"int8": ("MatMul", "Gemm"), "uint8": ("MatMul", "Gemm", "Conv")}
# DequantizeLinear and QuantizeLinear take `axis` (a scale per channel) from opset 13.
PER_CHANNEL_OPSET = 13
# int8 against float32 on the source's own inputs: a class agrees, logits move by a few percent. A model whose
# int8 kernels saturate (rel_l2 0.1 and more on x86 without VNNI) is refused.
QUANT_TOLERANCE: dict[str, float | None] = {"rel_l2": 0.1}
VERIFY_BATCHES = 4  # calibration batches kept to compare the result with its source
# The comparison with the source measures the quantization, not this CPU's kernels: onnxruntime's exact int8
# arithmetic on x86 (no 16-bit pair sums), so a model for x86-vnni or arm64 made on an AVX2 machine is judged as it
# will run there, and the verdict is the same on every machine. Where the model may saturate is the gate's to say.
EXACT_INT8 = {"session.x64quantprecision": "1"}


@dataclass(frozen=True)
class Target:
    """The settings onnxruntime recommends for one CPU family."""

    name: str
    activation_type: str  # static QDQ only: dynamic quantization's activations are always uint8
    weight_type: str
    reduce_range: bool
    why: str


TARGETS = {
    t.name: t
    for t in (
        Target(
            "portable",
            "uint8",
            "int8",
            True,
            "7-bit weights: no 16-bit pair sum can saturate in the U8S8 kernels of x86 CPUs without "
            "VNNI (VPMADDUBSW), and VNNI and ARM CPUs run them as well",
        ),
        Target(
            "x86-avx2",
            "uint8",
            "int8",
            True,
            "x86 without VNNI: 7-bit weights, so VPMADDUBSW's 16-bit pair sums cannot saturate",
        ),
        Target(
            "x86-vnni",
            "uint8",
            "int8",
            False,
            "x86 with VNNI (VPDPBUSD sums in 32 bits): full 8-bit weights; on x86 without VNNI "
            "the same model can saturate",
        ),
        Target(
            "arm64",
            "int8",
            "int8",
            False,
            "ARM: full 8-bit weights, symmetric int8 activations; on x86 without VNNI the same model can saturate",
        ),
    )
}
DEFAULT_TARGET = "portable"


@dataclass(frozen=True)
class QuantSettings:
    """What a quantization run chose, and why: the target's settings with any explicit choice over them."""

    target: str
    mode: str
    weight_type: str
    activation_type: str
    per_channel: bool
    reduce_range: bool

    @property
    def may_saturate(self) -> bool:
        """int8 weights at full range against 8-bit activations: a pair of products can exceed int16 in x86's
        U8S8 kernels without VNNI (2 x 255 x 127 = 64770 > 32767; with reduce_range, 2 x 255 x 64 = 32640)."""
        return self.weight_type == "int8" and not self.reduce_range

    @property
    def steps(self) -> tuple[str, ...]:
        return (
            (f"target_{self.target.replace('-', '_')}",)
            + (("per_channel",) if self.per_channel else ())
            + (("reduce_range",) if self.reduce_range else ())
        )

    def __str__(self) -> str:
        acts = "uint8 activations at run time" if self.mode == "dynamic" else f"{self.activation_type} activations"
        weights = f"{self.weight_type} weights{' per channel' if self.per_channel else ''}"
        weights += " in 7 bits (reduce_range: [-64, 64])" if self.reduce_range and self.weight_type == "int8" else ""
        text = f"target {self.target}: {weights}, {acts} ({TARGETS[self.target].why})"
        if self.may_saturate and TARGETS[self.target].reduce_range:
            text += (
                "; but reduce_range is off: on x86 without VNNI its int8 kernels can saturate (pass --reduce-range, "
                "or --target x86-vnni / arm64 to say where it runs)"
            )
        return text


def settings(
    target: str = DEFAULT_TARGET,
    mode: str = "static",
    weight_type: str | None = None,
    activation_type: str | None = None,
    per_channel: bool | None = None,
    reduce_range: bool | None = None,
) -> QuantSettings:
    """The target's settings, each overridden where given (None: the target's)."""
    if target not in TARGETS:
        raise ProducerError(
            f"target: {target!r} is not one of {', '.join(TARGETS)}",
            cli=f"--target: {target!r} is not one of {', '.join(TARGETS)}",
        )
    t = TARGETS[target]
    for name, value in (("weight_type", weight_type), ("activation_type", activation_type)):
        if value is not None and value not in WEIGHT_TYPES:
            raise ProducerError(f"{name}: {value!r} is not one of {', '.join(WEIGHT_TYPES)}")
    weights = weight_type or t.weight_type
    # uint8 weights run in U8U8 kernels, which widen to 16 bits before they multiply: nothing to saturate, no bit to
    # give up
    narrow = t.reduce_range and weights == "int8" if reduce_range is None else reduce_range
    return QuantSettings(
        target,
        mode,
        weights,
        activation_type or t.activation_type,
        per_channel if per_channel is not None else mode == "static",
        narrow,
    )


@dataclass(frozen=True)
class QuantizeResult:
    path: Path
    mode: str
    weight_type: str
    per_channel: bool
    preprocessed: bool
    source_bytes: int
    size_bytes: int
    calibration_batches: int = 0
    settings: QuantSettings | None = None
    quantized_weights: int = 0
    comparison: Any = None
    repairs: tuple[str, ...] = ()  # what was done to the source first, and to the result

    @property
    def steps(self) -> tuple[str, ...]:
        """The producer steps, as manifests name them in `optimization`."""
        first = tuple(s for s in ("constants_to_initializers", "opset_upgrade") if s in self.repairs)
        chosen = self.settings.steps if self.settings else (("per_channel",) if self.per_channel else ())
        return (
            *first,
            *(("quant_pre_process",) if self.preprocessed else ()),
            "quantize_dynamic" if self.mode == "dynamic" else "quantize_qdq",
            *chosen,
        )

    def __str__(self) -> str:
        cal = f", calibrated on {self.calibration_batches} batch(es)" if self.calibration_batches else ""
        lines = [
            f"{self.path}: {self.mode} {self.weight_type}{' per-channel' if self.per_channel else ''}{cal}; "
            f"{self.source_bytes / 1e6:.3f} MB -> {self.size_bytes / 1e6:.3f} MB "
            f"({self.size_bytes / self.source_bytes:.2f}x), "
            f"{self.quantized_weights} weight(s) quantized"
        ]
        if self.settings:
            lines.append(f"  {self.settings}")
        if self.comparison is not None:
            lines.append(
                f"  checked against the source: worst rel_l2 {self.comparison.worst('rel_l2'):.3g} "
                "(exact int8 arithmetic: session.x64quantprecision=1)"
            )
        lines += [
            f"  {r.replace('_', ' ')}" for r in self.repairs if r not in ("constants_to_initializers", "opset_upgrade")
        ]
        return "\n".join(lines)


def _qtype(name: str) -> Any:
    from model_checks.backends.onnx.runtime import onnxruntime

    onnxruntime()  # the package itself first, its cache kept out of the user's home
    from onnxruntime.quantization import QuantType

    if name not in WEIGHT_TYPES:
        raise ProducerError(f"weight_type: {name!r} is not one of {', '.join(WEIGHT_TYPES)}")
    return QuantType.QInt8 if name == "int8" else QuantType.QUInt8


def _source(src: str | Path) -> Path:
    src = Path(src)
    if not src.is_file():
        raise ProducerError(f"model: {src} does not exist")
    return src


_CWD = threading.RLock()


@contextlib.contextmanager
def _inside(directory: str) -> Iterator[None]:
    """Run with `directory` as the working directory: onnxruntime's symbolic shape inference saves
    `sym_shape_infer_temp.onnx` and a `<uuid>.data` there when it gives up, and removes neither."""
    with _CWD:
        old = os.getcwd()
        os.chdir(directory)
        try:
            yield
        finally:
            os.chdir(old)


class _Errors(logging.Handler):
    """Collects the errors quant_pre_process only logs (a failed graph optimization is logged, not raised)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# quant_pre_process's three steps, run one at a time so that a failure names its step.
PRE_STEPS = (
    ("symbolic shape inference", {"skip_optimization": True, "skip_onnx_shape": True}),
    ("graph optimization", {"skip_symbolic_shape": True, "skip_onnx_shape": True}),
    ("ONNX shape inference", {"skip_symbolic_shape": True, "skip_optimization": True}),
)


def preprocess(src: str | Path, dst: str | Path) -> Path:
    """onnxruntime's recommended pre-processing before quantization: shape inference and graph optimization, each
    step in a private directory that is removed; a failure is one sentence that names the step."""
    from model_checks.core.requires import require

    require("sympy", "producers", "quant_pre_process (symbolic shape inference)")
    from model_checks.backends.onnx.runtime import onnxruntime

    onnxruntime()  # the package itself first, its cache kept out of the user's home
    from onnxruntime.quantization import shape_inference

    src = _source(src)
    dst = Path(dst).resolve()
    with tempfile.TemporaryDirectory(prefix="model-checks-pre-") as tmp, _inside(tmp):
        current = src.resolve()
        for i, (step, skips) in enumerate(PRE_STEPS):
            out = Path(tmp) / f"step{i}.onnx"
            errors = _Errors()
            shape_inference.logger.addHandler(errors)
            propagate, shape_inference.logger.propagate = shape_inference.logger.propagate, False
            try:
                shape_inference.quant_pre_process(str(current), str(out), **skips)
            except Exception as e:
                errors.messages.append(_first_line(e) if str(e).strip() else f"{type(e).__name__} with no message")
            finally:
                shape_inference.logger.removeHandler(errors)
                shape_inference.logger.propagate = propagate
            if errors.messages:
                raise ProducerError(
                    f"quantize: pre-processing (onnxruntime's quant_pre_process) failed at {step} on {src.name}: "
                    f"{errors.messages[0].splitlines()[0][:300]}; nothing was written; "
                    "quantize without it (preprocess=False)",
                    cli=f"quantize: pre-processing (onnxruntime's quant_pre_process) failed at {step} on {src.name}: "
                    f"{errors.messages[0].splitlines()[0][:300]}; nothing was written; "
                    "quantize without it (--no-preprocess)",
                )
            current = out
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(current), str(dst))
    return dst


def _excluded(src: Path, names: Sequence[str]) -> list[str]:
    """`names` as onnxruntime's nodes_to_exclude, each proven to name a node (it ignores unknown names silently)."""
    if not names:
        return []
    import onnx

    have = {n.name for n in onnx.load(str(src), load_external_data=False).graph.node}
    unknown = [n for n in names if n not in have]
    if unknown:
        raise ProducerError(
            f"--exclude: no node named {', '.join(map(repr, unknown))} in {src.name} "
            f"(node names are in the localisation table: model-checks localize ARTIFACT_DIR)"
        )
    return list(names)


def _prepared(
    src: Path, tmp: str, s: QuantSettings, pre: bool, constants: bool, upgrade: bool
) -> tuple[Path, tuple[str, ...]]:
    """The model the quantizer reads, in `tmp`: Constant weights made initializers and the opset raised when
    asked (refused, with the fix, when per-channel needs an opset the model lacks), then pre-processed."""
    import onnx

    from model_checks.producers import onnx_graph

    model = onnx.load(str(src))
    repairs: list[str] = []
    if constants and onnx_graph.constants_to_initializers(model):
        repairs.append("constants_to_initializers")
    opset = onnx_graph.default_opset(model)
    if s.per_channel and opset < PER_CHANNEL_OPSET:
        if not upgrade:
            head = (
                f"quantize: per-channel quantization needs opset {PER_CHANNEL_OPSET} or later "
                f"(DequantizeLinear's axis), and "
                f"{src.name} is opset {opset}: the result would be an invalid model; nothing was written; "
            )
            raise ProducerError(
                head + f"upgrade it first (upgrade_opset=True: onnx.version_converter to {PER_CHANNEL_OPSET}) "
                "or quantize per tensor (per_channel=False)",
                cli=head + f"upgrade it first (--upgrade-opset: onnx.version_converter to {PER_CHANNEL_OPSET}) "
                "or quantize per tensor (--no-per-channel)",
            )
        try:
            model = onnx_graph.upgrade_opset(model, PER_CHANNEL_OPSET)
        except Exception as e:
            raise ProducerError(
                f"quantize: onnx.version_converter could not take {src.name} from opset {opset} to "
                f"{PER_CHANNEL_OPSET} ({_first_line(e)}); nothing was written; quantize per tensor (per_channel=False)",
                cli=f"quantize: onnx.version_converter could not take {src.name} from opset {opset} to "
                f"{PER_CHANNEL_OPSET} ({_first_line(e)}); nothing was written; quantize per tensor (--no-per-channel)",
            ) from None
        repairs.append("opset_upgrade")
    path = src
    if repairs:
        path = Path(tmp) / "source.onnx"
        onnx.save(model, str(path))
    if pre:
        path = preprocess(path, Path(tmp) / "pre.onnx")
    return path, tuple(repairs)


def _quantized_weights(model: Any) -> int:
    """How many initializers the quantizer wrote as 8-bit weights (QDQ's int8/uint8 weights, QOperator's
    *_quantized)."""
    from onnx import TensorProto

    return sum(
        1 for i in model.graph.initializer if i.data_type in (TensorProto.INT8, TensorProto.UINT8) and len(i.dims) >= 1
    )


def _nothing_quantized(src: Path, prepared: Path, ops: Sequence[str]) -> ProducerError:
    """Why no weight was quantized, with the fix."""
    import onnx

    from model_checks.producers.onnx_graph import constant_weights

    constants = constant_weights(onnx.load(str(prepared), load_external_data=False), ops)
    if constants:
        shown = ", ".join(f"'{c}'" for c in constants[:5]) + (
            f" and {len(constants) - 5} more" if len(constants) > 5 else ""
        )
        head = (
            f"quantize: no weight was quantized: the weights are Constant nodes ({shown}); nothing was written; "
            "convert them to initializers first"
        )
        return ProducerError(head + " (constants_to_initializers=True)", cli=head + " (--constants-to-initializers)")
    return ProducerError(
        f"quantize: no weight was quantized: {src.name} has no {'/'.join(ops)} node with a weight initializer "
        "the quantizer takes; nothing was written"
    )


def _finish(
    src: Path,
    dst: Path,
    written: Path,
    prepared: Path,
    s: QuantSettings,
    feeds: Mapping[str, np.ndarray],
    tolerance: Mapping[str, float | None] | None,
    ops: Sequence[str],
    pre: bool,
    repairs: tuple[str, ...],
    batches: int,
) -> QuantizeResult:
    """The one verify-before-write path: something quantized, valid, run by onnxruntime, within the tolerance."""
    import onnx

    from model_checks.core.fileio import write_bytes

    model = onnx.load(str(written))
    count = _quantized_weights(model)
    if count == 0:
        raise _nothing_quantized(src, prepared, ops)
    want = source_outputs(src, feeds, "quantize")
    v = verified(
        model,
        f"quantize ({s.mode} {s.weight_type})",
        feeds,
        want,
        QUANT_TOLERANCE if tolerance is None else tolerance,
        hint="keep the nodes that lose most in float (exclude=[...]: model-checks localize names them) "
        "or pass a looser tolerance",
        cli_hint="keep the nodes that lose most in float (--exclude NODE: model-checks localize names them) "
        "or pass a looser --tolerance",
        config=EXACT_INT8,
    )
    write_bytes(dst, v.data)
    return QuantizeResult(
        dst,
        s.mode,
        s.weight_type,
        s.per_channel,
        pre,
        src.stat().st_size,
        len(v.data),
        batches,
        s,
        count,
        v.comparison,
        (*repairs, *(n.replace(" ", "_") for n in v.notes)),
    )


def quantize_dynamic(
    src: str | Path,
    dst: str | Path,
    weight_type: str | None = None,
    per_channel: bool = False,
    preprocess: bool = True,
    op_types: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    *,
    target: str = DEFAULT_TARGET,
    reduce_range: bool | None = None,
    samples: Mapping[str, np.ndarray] | None = None,
    tolerance: Mapping[str, float | None] | None = None,
    constants_to_initializers: bool = False,
    upgrade_opset: bool = False,
) -> QuantizeResult:
    """Dynamic quantization: weights stored as `weight_type` (default: the target's), activations quantized per run.
    Checked against the source on `samples` (default: seeded inputs) under `tolerance` before it is written."""
    import onnx

    from model_checks.backends.onnx.runtime import onnxruntime

    onnxruntime()  # the package itself first, its cache kept out of the user's home
    from onnxruntime.quantization import quantize_dynamic as ort_dynamic

    src, dst = _source(src).resolve(), Path(dst)  # resolved: onnxruntime runs in a private working directory
    s = settings(target, "dynamic", weight_type, None, per_channel, reduce_range)
    feeds = (
        dict(samples)
        if samples is not None
        else seeded_feeds(onnx.load(str(src), load_external_data=False), what="quantize")
    )
    ops = list(op_types or DYNAMIC_OPS[s.weight_type])
    with tempfile.TemporaryDirectory(prefix="model-checks-quant-") as tmp:
        model, repairs = _prepared(src, tmp, s, preprocess, constants_to_initializers, upgrade_opset)
        out = Path(tmp) / "quantized.onnx"
        with _inside(tmp):
            ort_dynamic(
                str(model),
                str(out),
                weight_type=_qtype(s.weight_type),
                per_channel=s.per_channel,
                reduce_range=s.reduce_range,
                op_types_to_quantize=ops,
                nodes_to_exclude=_excluded(model, exclude),
            )
        return _finish(src, dst, out, model, s, feeds, tolerance, ops, preprocess, repairs, 0)


def quantize_static(
    src: str | Path,
    dst: str | Path,
    calibration: Any,
    per_channel: bool | None = None,
    preprocess: bool = True,
    weight_type: str | None = None,
    activation_type: str | None = None,
    method: str = "minmax",
    batch: int = 16,
    max_batches: int | None = None,
    exclude: Sequence[str] = (),
    *,
    target: str = DEFAULT_TARGET,
    reduce_range: bool | None = None,
    tolerance: Mapping[str, float | None] | None = None,
    constants_to_initializers: bool = False,
    upgrade_opset: bool = False,
) -> QuantizeResult:
    """Static quantization in QDQ format, calibrated on `calibration` (arrays, an .npz path, a generator:
    see CalibrationReader), with the target's types and range (default: portable). Per-channel weights by
    default: a Conv's channels have very different ranges. Checked against the source on the first calibration
    batches under `tolerance` before it is written."""
    from model_checks.backends.onnx.runtime import onnxruntime

    onnxruntime()  # the package itself first, its cache kept out of the user's home
    from onnxruntime.quantization import CalibrationMethod, QuantFormat
    from onnxruntime.quantization import quantize_static as ort_static

    if calibration is None:
        raise ProducerError("calibration: static quantization needs calibration data (arrays, an .npz or a generator)")
    if method not in METHODS:
        raise ProducerError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    src, dst = _source(src).resolve(), Path(dst)  # resolved: onnxruntime runs in a private working directory
    if isinstance(calibration, (str, Path)):
        calibration = Path(calibration).resolve()
    s = settings(target, "static", weight_type, activation_type, per_channel, reduce_range)
    calibrate = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[method]
    with tempfile.TemporaryDirectory(prefix="model-checks-quant-") as tmp:
        model, repairs = _prepared(src, tmp, s, preprocess, constants_to_initializers, upgrade_opset)
        reader = CalibrationReader(
            calibration, model, batch=batch, limit=max_batches, keep=VERIFY_BATCHES
        ).with_progress()
        out = Path(tmp) / "quantized.onnx"
        try:
            with _inside(tmp):
                ort_static(
                    str(model),
                    str(out),
                    reader,
                    quant_format=QuantFormat.QDQ,
                    per_channel=s.per_channel,
                    reduce_range=s.reduce_range,
                    weight_type=_qtype(s.weight_type),
                    activation_type=_qtype(s.activation_type),
                    calibrate_method=calibrate,
                    nodes_to_exclude=_excluded(model, exclude),
                )
        except ValueError:
            if reader.count == 0:  # onnxruntime says only "No data is collected."
                raise ProducerError("calibration: the source yielded no batches") from None
            raise
        kept = reader.kept
        feeds = {k: np.concatenate([f[k] for f in kept]) for k in kept[0]}
        return _finish(
            src, dst, out, model, s, feeds, tolerance, ("Conv", "MatMul", "Gemm"), preprocess, repairs, reader.count
        )
