"""Keras -> TFLite through `tf.lite.TFLiteConverter`, in four modes: float32, float16 (float16 weights),
dynamic (dynamic-range: int8 weights, float activations) and int8 (full integer, calibrated on a
representative dataset, with int8 or uint8 inputs and outputs). With `qat=True` the int8 model comes from
quantization-aware training instead: tfmot wraps the model, a short fit (the float model's own outputs as
targets, so no labels are needed) settles the fake-quant ranges, and the QAT model converts to full integer.

Every conversion is run in LiteRT against the float Keras model on samples before anything is written
(quantized inputs and outputs through their scales and zero points, compared in float); out of tolerance,
nothing is written and the error shows the comparison."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from model_checks.core.fileio import write_bytes
from model_checks.producers.progress import stages
from model_checks.producers.verify import ProducerError, compare

MODES = ("float32", "float16", "dynamic", "int8")
IO_TYPES = ("int8", "uint8")
# What each mode must hold against the float Keras model on the samples (metric -> limit).
TOLERANCE: dict[str, dict[str, float | None]] = {
    "float32": {"rel_l2": 1e-4, "max_abs": 1e-3},  # the same float kernels, reordered: rounding only
    "float16": {"rel_l2": 1e-2},
    "dynamic": {"rel_l2": 5e-2},
    "int8": {"rel_l2": 0.15, "top1_agreement": 0.95},  # 8-bit activations too: the predicted class holds
}
CALIBRATION_SAMPLES = 256  # representative dataset rows (one a step)
QAT_EPOCHS = 1
QAT_BATCH = 32


@dataclass(frozen=True)
class TFLiteConversion:
    path: Path
    mode: str
    steps: tuple[str, ...]
    size_bytes: int
    figures: Mapping[str, float]  # rel_l2 and top1_agreement against the float Keras model on the samples

    def __str__(self) -> str:
        figs = ", ".join(f"{k} {v:.3g}" for k, v in self.figures.items())
        steps = ", ".join(self.steps)
        size = f"{self.size_bytes / 1e6:.3f} MB"
        return f"{self.path}: Keras -> TFLite {self.mode} ({steps}), {size}; against Keras: {figs}"


def _tf() -> Any:
    from model_checks.producers.keras_convert import tensorflow

    return tensorflow()


def _array(source: Any, what: str) -> np.ndarray:
    if isinstance(source, (str, Path)):
        from model_checks.producers.loading import load_array

        return np.asarray(load_array(Path(source), what), np.float32)
    return np.asarray(source, np.float32)


def representative(x: np.ndarray) -> Any:
    """The converter's representative dataset: one sample a step, in float32."""
    rows = x[:CALIBRATION_SAMPLES]
    return lambda: ([rows[i : i + 1]] for i in range(len(rows)))


def qat_model(model: Any, x: np.ndarray, epochs: int = QAT_EPOCHS) -> Any:
    """tfmot's QAT model of `model`, its ranges calibrated on `x`, then fit briefly to the float model's
    outputs (self-distillation: no labels needed, and the fit pulls the quantized model towards the float one)."""
    from model_checks.backends.keras.loader import keras_modules
    from model_checks.tfmot.quantize import calibrate, plan, quantize_model

    _, keras = keras_modules()
    configs, problems = plan(model)
    if problems:
        raise ProducerError("QAT: tfmot cannot quantize this model:\n" + "\n".join(f"  - {p}" for p in problems))
    qmodel = quantize_model(model, configs)
    calibrate(qmodel, x[:QAT_BATCH])
    targets = np.asarray(model(x, training=False))
    qmodel.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse")
    qmodel.fit(x, targets, batch_size=QAT_BATCH, epochs=epochs, shuffle=False, verbose=0)
    return qmodel


def _named_converter(tf: Any, model: Any, input_name: str, output_names: list[str]) -> Any:
    """A converter whose signature names the input and outputs as given: tfmot renames a QAT model's layers
    (`quant_logits`), and the TFLite model should keep its source's names."""
    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), model.inputs[0].dtype, name=input_name)

    def serve(x: Any) -> dict[str, Any]:
        return dict(zip(output_names, keras_list(model(x, training=False)), strict=True))

    fn = tf.function(serve, input_signature=[spec])
    return tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)


def keras_list(out: Any) -> list[Any]:
    return list(out.values()) if isinstance(out, dict) else (list(out) if isinstance(out, (list, tuple)) else [out])


def to_tflite(
    model: Any,
    mode: str,
    calibration: np.ndarray | None = None,
    io_type: str = "int8",
    qat: bool = False,
    names: tuple[str, list[str]] | None = None,
) -> bytes:
    """The TFLite flatbuffer of a Keras model (QAT-wrapped already when `qat`) in `mode`; `names` (input, outputs)
    for the signature, else the model's own."""
    tf = _tf()
    conv = tf.lite.TFLiteConverter.from_keras_model(model) if names is None else _named_converter(tf, model, *names)
    if mode != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        # the converter asks for a representative dataset even for a QAT model, whose fake-quant layers carry
        # the ranges of its weights and activations; for a float model it is the calibration itself
        assert calibration is not None
        conv.representative_dataset = representative(calibration)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = {"int8": tf.int8, "uint8": tf.uint8}[io_type]
    try:
        return conv.convert()
    except Exception as e:
        raise ProducerError(
            f"TFLiteConverter could not convert {model.name} ({mode}): {type(e).__name__}: {str(e).strip()[:300]}"
        ) from e


def litert_outputs(data: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    """The flatbuffer run by the gate's own TFLite runner (LiteRT, quantized I/O handled) on `x`."""
    from model_checks.backends.tflite.runner import TFLiteRunner

    with tempfile.TemporaryDirectory(prefix="model-checks-tflite-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(data)
        runner = TFLiteRunner(path, path.parent, threads=1)
        try:
            if len(runner.inputs) != 1:
                raise ProducerError(
                    f"the converted model has {len(runner.inputs)} inputs; convert-tflite handles single-input models"
                )
            return runner.infer({runner.inputs[0].name: x})
        finally:
            runner.close()


def keras_outputs(model: Any, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    return {n: np.asarray(o) for n, o in zip(names, keras_list(model(x, training=False)), strict=False)}


def verify(
    data: bytes, float_model: Any, x: np.ndarray, mode: str, tolerance: Mapping[str, float | None] | None = None
) -> dict[str, float]:
    """Run the flatbuffer in LiteRT against the float Keras model; the figures, or a ProducerError."""
    got = litert_outputs(data, x)
    expected = keras_outputs(float_model, x, list(got))
    c = compare(got, expected, TOLERANCE[mode] if tolerance is None else tolerance, f"convert-tflite {mode} default")
    if not c:
        raise ProducerError(
            "\n".join(
                [
                    f"TFLite {mode}: outputs differ from the Keras model on {len(x)} samples (run in LiteRT); "
                    "nothing was written",
                    *c.render(),
                ]
            )
        )
    return {m: v for m in ("rel_l2", "top1_agreement") if (v := c.worst(m)) is not None}


def convert_tflite(
    model: Any,
    dst: str | Path,
    mode: str = "float32",
    calibration: Any = None,
    samples: Any = None,
    io_type: str = "int8",
    qat: bool = False,
    tolerance: Mapping[str, float | None] | None = None,
) -> TFLiteConversion:
    """Convert a Keras model (or a path to one) to TFLite `mode` at `dst`, verified in LiteRT first.

    `calibration`: real inputs (an array or an .npz), required for int8 (the representative dataset, or what QAT fits
    on). `samples`: inputs to verify on (default: the calibration data, else seeded uniform [0, 1) inputs).
    `io_type`: the int8 model's input and output type. `qat`: int8 through quantization-aware training."""
    from model_checks.producers.keras_convert import load_keras

    if mode not in MODES:
        raise ProducerError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
    if io_type not in IO_TYPES:
        raise ProducerError(f"io_type: {io_type!r} is not one of {', '.join(IO_TYPES)}")
    if qat and mode != "int8":
        raise ProducerError(f"qat: quantization-aware training ends in a full-integer model; use mode int8, not {mode}")
    if mode == "int8" and calibration is None:
        raise ProducerError(
            "calibration: the int8 mode is calibrated (or, with QAT, fit) on real inputs; pass calibration data"
        )
    model = load_keras(model) if isinstance(model, (str, Path)) else model
    if len(model.inputs) != 1:
        raise ProducerError(f"model: {len(model.inputs)} inputs; convert-tflite handles single-input models")
    calib = _array(calibration, "calibration") if calibration is not None else None
    if samples is not None:
        x = _array(samples, "samples")
    elif calib is not None:
        x = calib[:64]
    else:
        x = np.random.default_rng(0).uniform(0, 1, (8, *model.inputs[0].shape[1:])).astype(np.float32)
    steps: tuple[str, ...] = ("tflite_converter",)
    steps += {
        "float32": (),
        "float16": ("float16",),
        "dynamic": ("dynamic_range",),
        "int8": ("full_integer", f"{io_type}_io"),
    }[mode]
    with stages(f"Keras -> TFLite {mode}", 3 if qat else 2) as done:
        source = model
        if qat:
            assert calib is not None
            source = qat_model(model, calib)
            steps = ("qat", *steps)
            done("quantization-aware training")
        names = (model.input_names[0], list(model.output_names)) if qat else None
        data = to_tflite(source, mode, calib, io_type, qat, names)
        done("converted")
        figures = verify(data, model, x, mode, tolerance)
        done("verified in LiteRT")
    dst = Path(dst)
    write_bytes(dst, data)
    return TFLiteConversion(dst, mode, steps, len(data), figures)
