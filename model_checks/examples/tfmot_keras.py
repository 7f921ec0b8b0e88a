"""Keras example artifacts for the tfmot checks, made by the example builder (`build.keras_family`).

- `digits_keras_model`: the trained digits Keras model itself, as a `.keras` artifact whose reference is its
  own fp32 ONNX conversion (a cross-framework equivalence under a float tolerance, rel_l2 1e-4), with
  `tfmot: {quantize: true, prune: true}`: it passes every check, both tfmot checks included.
- `digits_keras_qat_tflite`: the same Keras model, asking for the end of the QAT road (`tfmot: {quantize:
  true, tflite: true}`): the QAT model converted to full-integer TFLite must hold the artifact's `tolerance`
  against it. That tolerance is an int8 one (top-1 agreement 0.95), and it is honest for the artifact's
  equivalence too: its reference is the full-integer TFLite model `digits_keras_tflite_int8`. (On
  `digits_keras_model`, `tflite: true` would hold an int8 model to rel_l2 1e-4, which none holds, and
  loosening that tolerance would loosen its ONNX equivalence.)
- `tfmot_unsupported`: a model tfmot cannot handle (a residual sum written as `x + y`, a bare tensor
  operation). Its failure is the point, so it is never written under `artifacts/` (an always-red example
  would break `make check`): `failing_artifact(dir)` builds it where a test wants it, and
  tests/tfmot/test_examples.py shows the gate's failure message on it.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from model_checks.examples.build import Family
    from model_checks.producers.package import Packaged

TFMOT = {"quantize": True, "prune": True, "target_sparsity": 0.5}
# the end of the QAT road, asked of its own artifact: a full-integer TFLite model holding `tolerance` against it
QAT_TFLITE = {"quantize": True, "tflite": True}


def _declare_tfmot(packaged: Packaged, tfmot: dict[str, Any]) -> Packaged:
    """Add `tfmot:` to the manifest package() wrote (package measures the model; tfmot is a request, not a fact)."""
    from dataclasses import replace

    manifest = {**packaged.manifest, "tfmot": dict(tfmot)}
    (packaged.dir / "metadata.yaml").write_text(
        yaml.safe_dump(manifest, sort_keys=False, default_flow_style=None, width=120), encoding="utf-8"
    )
    return replace(packaged, manifest=manifest)


def save_keras(model: Any, path: Path) -> Path:
    """`model.save(path)`, then the archive rewritten without the save time (in metadata.json and in the
    zip entries), so a rebuild writes the same bytes and the same sha256."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.keras"
        model.save(raw)
        with zipfile.ZipFile(raw) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
            for name in src.namelist():
                data = src.read(name)
                if name == "metadata.json":
                    meta = json.loads(data)
                    meta.pop("date_saved", None)
                    data = json.dumps(meta, sort_keys=True).encode()
                dst.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return path


def keras_artifacts(model: Any, fam: Family) -> list[Packaged]:
    """The trained Keras model as `<prefix>_model`: .keras, reference the family's fp32 ONNX, tfmot declared."""
    with tempfile.TemporaryDirectory() as tmp:
        path = save_keras(model, Path(tmp) / "model.keras")
        packaged = fam.package("model", path, tolerance={"rel_l2": 1e-4, "mae": 1e-5})
    return [_declare_tfmot(packaged, TFMOT)]


def qat_tflite_artifact(keras_path: Path, fam: Family, int8_tflite: Path) -> Packaged:
    """The Keras model at `keras_path` as `<prefix>_qat_tflite`: reference the full-integer TFLite model
    `int8_tflite`, an int8 tolerance (which the tfmot TFLite step holds too), `tfmot: {quantize, tflite}`."""
    import shutil

    from model_checks.examples.build import INT8_TOLERANCE, LIMITS, VERSION
    from model_checks.producers.package import package

    d = fam.dir("qat_tflite")
    if d.exists():
        shutil.rmtree(d)
    packaged = package(
        keras_path,
        d,
        model_name=f"{fam.prefix}_qat_tflite",
        version=VERSION,
        root=fam.out,
        reference=int8_tflite,
        samples=fam.samples,
        eval_data=fam.eval,
        input_range=(0.0, 1.0),
        layout=fam.layout,
        limits=LIMITS,
        tolerance=INT8_TOLERANCE,
    )
    return _declare_tfmot(packaged, QAT_TFLITE)


def unsupported_model() -> Any:
    """A small CNN with a residual sum written as `x + y`: tf-keras records it as a TFOpLambda, not a layer."""
    from model_checks.backends.keras.loader import keras_modules

    _, keras = keras_modules()
    keras.utils.set_random_seed(0)
    i = keras.Input((8, 8, 1), name="input")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(i)
    y = keras.layers.Conv2D(8, 3, padding="same", name="conv2")(x)
    x = keras.layers.ReLU(name="relu")(x + y)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(i, keras.layers.Dense(10, name="logits")(x), name="tfmot_unsupported")


def failing_artifact(d: Path) -> Path:
    """`tfmot_unsupported` written to `d` (an artifact directory outside any root `make check` gates)."""
    d.mkdir(parents=True, exist_ok=True)
    save_keras(unsupported_model(), d / "model.keras")
    manifest = {
        "model_name": "tfmot_unsupported",
        "version": "1.0",
        "file": "model.keras",
        "precision": "fp32",
        "inputs": [
            {"name": "input", "dtype": "float32", "shape": ["batch", 8, 8, 1], "layout": "NHWC", "range": [0.0, 1.0]}
        ],
        "tfmot": TFMOT,
    }
    (d / "metadata.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return d
