"""Keras -> ONNX through tf2onnx, in four variants: fp32, fp16, dynamic uint8 and static int8 (QDQ,
calibration required). The fp32 conversion is compared with Keras before anything is written; the other
variants are made from it in a temporary directory that is removed whatever happens."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_checks.core.fileio import write_bytes
from model_checks.producers.progress import stages
from model_checks.producers.verify import ProducerError, input_specs, verified

VARIANTS = ("fp32", "fp16", "uint8", "int8")
DEFAULT_OPSET = 17
# tf2onnx rewrites Keras ops into ONNX ones (e.g. Dense into MatMul + Add): float rounding differs a little.
CONVERT_TOLERANCE = {"rel_l2": 1e-4, "max_abs": 1e-3}


@dataclass(frozen=True)
class KerasConversion:
    path: Path
    variant: str
    steps: tuple[str, ...]
    size_bytes: int

    def __str__(self) -> str:
        return f"{self.path}: Keras -> ONNX {self.variant} ({', '.join(self.steps)}), {self.size_bytes / 1e6:.3f} MB"


def tensorflow() -> Any:
    """TensorFlow with the Keras 2 API (tf-keras), which tf2onnx converts."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def load_keras(path: str | Path) -> Any:
    """A `.keras` or `.h5` model, loaded without compiling (and in safe mode where the format has one)."""
    tf = tensorflow()
    path = Path(path)
    if not path.exists():
        raise ProducerError(f"model: {path} does not exist")
    kw = {"safe_mode": True} if path.suffix == ".keras" else {}
    return tf.keras.models.load_model(str(path), compile=False, **kw)


def _rename_batch(model: Any, batch_axis: str) -> None:
    """tf2onnx names an unknown batch `unk__N`; give every input and output's leading dynamic dim one name."""
    for v in [*model.graph.input, *model.graph.output]:
        dims = v.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = batch_axis


def keras_to_onnx(model: Any, samples: np.ndarray, opset: int = DEFAULT_OPSET, batch_axis: str = "batch") -> bytes:
    """The fp32 ONNX bytes of a Keras model, checked against Keras on `samples` (a batch of inputs)."""
    tf = tensorflow()
    import tf2onnx

    if len(model.inputs) != 1:
        raise ProducerError(f"model: {len(model.inputs)} inputs; convert-keras handles single-input models")
    inp = model.inputs[0]
    name = inp.name.split(":")[0]
    spec = (tf.TensorSpec((None, *inp.shape[1:]), inp.dtype, name=name),)
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    except Exception as e:
        raise ProducerError(f"tf2onnx could not convert {model.name}: {type(e).__name__}: {str(e)[:300]}") from e
    _rename_batch(proto, batch_axis)
    x = np.asarray(samples, dtype=np.float32)
    keras_out = model(x, training=False)
    keras_out = keras_out if isinstance(keras_out, (list, tuple)) else [keras_out]
    names = [o.name for o in proto.graph.output]
    return verified(
        proto, "tf2onnx conversion", {name: x}, {n: np.asarray(k) for n, k in zip(names, keras_out)}, CONVERT_TOLERANCE
    ).data


def convert_keras(
    model: Any,
    dst: str | Path,
    variant: str = "fp32",
    samples: np.ndarray | None = None,
    calibration: Any = None,
    opset: int = DEFAULT_OPSET,
) -> KerasConversion:
    """Convert a Keras model (or a path to one) to ONNX `variant` at `dst`.

    `samples`: a batch of real inputs for checking the conversion (default: seeded uniform [0, 1) inputs). `calibration` is required for int8 (see CalibrationReader for its forms).
    """
    from model_checks.producers import fp16, ort_quantize

    if variant not in VARIANTS:
        raise ProducerError(f"variant: {variant!r} is not one of {', '.join(VARIANTS)}")
    if variant == "int8" and calibration is None:
        raise ProducerError("calibration: the int8 variant is calibrated on real inputs; pass calibration data")
    model = load_keras(model) if isinstance(model, (str, Path)) else model
    if samples is None:
        shape = (2, *model.inputs[0].shape[1:])
        samples = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
    dst = Path(dst)
    with (
        tempfile.TemporaryDirectory(prefix="model-checks-keras-") as tmp,
        stages(f"Keras -> ONNX {variant}", 1 if variant == "fp32" else 2) as done,
    ):
        fp32 = Path(tmp) / "fp32.onnx"
        write_bytes(fp32, keras_to_onnx(model, samples, opset))
        done("tf2onnx, checked against Keras")
        steps: tuple[str, ...] = ("tf2onnx",)
        if variant == "fp32":
            write_bytes(dst, fp32.read_bytes())
        elif variant == "fp16":
            fp16.to_fp16(fp32, dst, keep_io_types=True, samples={_input_name(fp32): np.asarray(samples, np.float32)})
            steps += ("fp16", "keep_io_types")
        elif variant == "uint8":
            steps += ort_quantize.quantize_dynamic(fp32, dst, weight_type="uint8").steps
        else:
            steps += ort_quantize.quantize_static(fp32, dst, calibration).steps
        if variant != "fp32":
            done(variant)
    return KerasConversion(dst, variant, steps, dst.stat().st_size)


def _input_name(path: Path) -> str:
    import onnx

    return input_specs(onnx.load(str(path)))[0].name
