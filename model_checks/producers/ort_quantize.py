"""onnxruntime quantization: dynamic (int8 or uint8 weights, activations quantized at run time) and static
int8 in QDQ format (calibrated on real inputs), each after the pre-processing onnxruntime recommends
(`quant_pre_process`: symbolic shape inference and graph optimization). Temporary files are always removed."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from model_checks.producers.calibration import CalibrationReader
from model_checks.producers.verify import ProducerError

WEIGHT_TYPES = ("int8", "uint8")
METHODS = ("minmax", "entropy", "percentile")
# Dynamic quantization of Conv makes ConvInteger, which onnxruntime's CPU provider runs only with uint8
# weights; so int8 dynamic quantizes the matrix products, and uint8 may take Conv too.
DYNAMIC_OPS = {"int8": ("MatMul", "Gemm"), "uint8": ("MatMul", "Gemm", "Conv")}


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

    @property
    def steps(self) -> tuple[str, ...]:
        """The producer steps, as manifests name them in `optimization`."""
        return (*(("quant_pre_process",) if self.preprocessed else ()), "quantize_dynamic" if self.mode == "dynamic" else "quantize_qdq",
                *(("per_channel",) if self.per_channel else ()))

    def __str__(self) -> str:
        cal = f", calibrated on {self.calibration_batches} batch(es)" if self.calibration_batches else ""
        return (f"{self.path}: {self.mode} {self.weight_type}{' per-channel' if self.per_channel else ''}{cal}; "
                f"{self.source_bytes / 1e6:.3f} MB -> {self.size_bytes / 1e6:.3f} MB ({self.size_bytes / self.source_bytes:.2f}x)")


def _qtype(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    if name not in WEIGHT_TYPES:
        raise ProducerError(f"weight_type: {name!r} is not one of {', '.join(WEIGHT_TYPES)}")
    return QuantType.QInt8 if name == "int8" else QuantType.QUInt8


def _source(src: str | Path) -> Path:
    src = Path(src)
    if not src.is_file():
        raise ProducerError(f"model: {src} does not exist")
    return src


def preprocess(src: str | Path, dst: str | Path) -> Path:
    """onnxruntime's recommended pre-processing before quantization: shape inference and graph optimization."""
    from model_checks.core.requires import require

    require("sympy", "producers", "quant_pre_process (symbolic shape inference)")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(_source(src)), str(dst))
    except Exception as e:
        raise ProducerError(f"quant_pre_process failed on {Path(src).name}: {type(e).__name__}: {str(e)[:300]}") from e
    return Path(dst)


def _prepared(src: Path, tmp: str, pre: bool) -> Path:
    return preprocess(src, Path(tmp) / "pre.onnx") if pre else src


def quantize_dynamic(src: str | Path, dst: str | Path, weight_type: str = "int8", per_channel: bool = False, preprocess: bool = True,
                     op_types: Sequence[str] | None = None) -> QuantizeResult:
    """Dynamic quantization: weights stored as `weight_type`, activations quantized per run."""
    from onnxruntime.quantization import quantize_dynamic as ort_dynamic

    src, dst = _source(src), Path(dst)
    qtype = _qtype(weight_type)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="model-checks-quant-") as tmp:
        ort_dynamic(str(_prepared(src, tmp, preprocess)), str(dst), weight_type=qtype, per_channel=per_channel,
                    op_types_to_quantize=list(op_types or DYNAMIC_OPS[weight_type]))
    return QuantizeResult(dst, "dynamic", weight_type, per_channel, preprocess, src.stat().st_size, dst.stat().st_size)


def quantize_static(src: str | Path, dst: str | Path, calibration: Any, per_channel: bool = True, preprocess: bool = True,
                    weight_type: str = "int8", activation_type: str = "int8", method: str = "minmax", batch: int = 16,
                    max_batches: int | None = None) -> QuantizeResult:
    """Static quantization in QDQ format, calibrated on `calibration` (arrays, an .npz path, a generator:
    see CalibrationReader). Per-channel weights by default: a Conv's channels have very different ranges."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat
    from onnxruntime.quantization import quantize_static as ort_static

    if calibration is None:
        raise ProducerError("calibration: static quantization needs calibration data (arrays, an .npz or a generator)")
    if method not in METHODS:
        raise ProducerError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    src, dst = _source(src), Path(dst)
    calibrate = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}[method]
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="model-checks-quant-") as tmp:
        model = _prepared(src, tmp, preprocess)
        reader = CalibrationReader(calibration, model, batch=batch, limit=max_batches).with_progress()
        try:
            ort_static(str(model), str(dst), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                       weight_type=_qtype(weight_type), activation_type=_qtype(activation_type), calibrate_method=calibrate)
        except ValueError:
            if reader.count == 0:  # onnxruntime says only "No data is collected."
                raise ProducerError("calibration: the source yielded no batches") from None
            raise
    return QuantizeResult(dst, "static", weight_type, per_channel, preprocess, src.stat().st_size, dst.stat().st_size, reader.count)
