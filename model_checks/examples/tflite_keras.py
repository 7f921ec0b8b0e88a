"""TFLite example artifacts, made by the example builder (`build.keras_family`) from the Keras source
`digits_keras_model/model.keras`, each with that `.keras` model as its reference (a cross-framework
equivalence through LiteRT against tf-keras, NHWC on both sides):

- `digits_keras_tflite_fp32`: float32; `_fp16`: float16 weights; `_dynamic`: dynamic range (int8 weights);
- `digits_keras_tflite_int8`: full integer with int8 inputs and outputs, from the QAT model (tfmot wraps the
  Keras model, a short fit, full-integer conversion). The gate quantizes the samples with the input's scale
  and zero point and dequantizes the logits with theirs, and compares in float.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from model_checks.examples.build import Family
    from model_checks.producers.package import Packaged

# variant -> (converter mode, QAT first, tolerance against the Keras model)
VARIANTS: dict[str, tuple[str, bool, dict[str, Any]]] = {
    "tflite_fp32": ("float32", False, {"rel_l2": 1e-4, "mae": 1e-4}),
    "tflite_fp16": ("float16", False, {"rel_l2": 1e-2, "mae": None}),
    "tflite_dynamic": ("dynamic", False, {"rel_l2": 5e-2, "mae": None}),
    # 8-bit activations move logits by a few percent: the predicted class is what holds
    "tflite_int8": ("int8", True, {"rel_l2": None, "mae": None, "top1_agreement": 0.95}),
}


def tflite_artifacts(keras_path: Path, fam: Family, calibration: Any) -> list[Packaged]:
    """The four TFLite variants of the Keras model at `keras_path`, each packaged against it."""
    import shutil
    import tempfile

    from model_checks.examples.build import LIMITS, VERSION
    from model_checks.producers.package import package
    from model_checks.producers.tflite_convert import convert_tflite

    made = []
    for variant, (mode, qat, tolerance) in VARIANTS.items():
        d = fam.dir(variant)
        if d.exists():
            shutil.rmtree(d)
        with tempfile.TemporaryDirectory(prefix="model-checks-tflite-") as tmp:
            conv = convert_tflite(
                keras_path,
                Path(tmp) / "model.tflite",
                mode,
                calibration=calibration if mode == "int8" else None,
                samples=fam.samples,
                qat=qat,
            )
            made.append(
                package(
                    conv.path,
                    d,
                    model_name=f"{fam.prefix}_{variant}",
                    version=VERSION,
                    root=fam.out,
                    reference=keras_path,
                    samples=fam.samples,
                    eval_data=fam.eval,
                    input_range=(0.0, 1.0),
                    layout=fam.layout,
                    limits=LIMITS,
                    optimization=list(conv.steps),
                    tolerance=tolerance,
                )
            )
    return made
