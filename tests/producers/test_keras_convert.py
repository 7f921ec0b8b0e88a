"""Keras -> ONNX in the four variants (one small model, TensorFlow imported once), each gated against the
fp32 conversion; int8 without calibration is refused before TensorFlow loads; temporary files never stay."""

from __future__ import annotations

import tempfile
from types import SimpleNamespace

import numpy as np
import pytest

from model_checks.producers import keras_convert
from model_checks.producers.package import package
from model_checks.producers.verify import ProducerError
from tests.producers.helpers import assert_passes

TOLERANCE = {
    "fp32": None,
    "fp16": {"rel_l2": 1e-2, "mae": None},
    "uint8": {"rel_l2": 0.1, "mae": None, "top1_agreement": 0.9},
    "int8": {"rel_l2": 0.1, "mae": None, "top1_agreement": 0.9},
}


@pytest.fixture(scope="module")
def keras_model():  # type: ignore[no-untyped-def]
    pytest.importorskip("tf2onnx")
    tf = keras_convert.tensorflow()
    tf.keras.utils.set_random_seed(0)
    layers = tf.keras.layers
    return tf.keras.Sequential(
        [
            layers.Input((8, 8, 1), name="image"),
            layers.Conv2D(4, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(10, name="logits"),
        ]
    )


def test_four_variants_pass_the_gate_and_leave_no_temporary_files(tmp_path, keras_model, gate, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    root = tmp_path / "root"
    x = np.random.default_rng(0).uniform(0, 1, (32, 8, 8, 1)).astype(np.float32)
    made = {}
    for variant in keras_convert.VARIANTS:
        d = root / variant
        made[variant] = keras_convert.convert_keras(
            keras_model, d / "model.onnx", variant, samples=x[:4], calibration=x if variant == "int8" else None
        )
        reference = None if variant == "fp32" else root / "fp32" / "model.onnx"
        p = package(
            d / "model.onnx",
            d,
            model_name=f"k_{variant}",
            reference=reference,
            samples=x,
            tolerance=TOLERANCE[variant],
            optimization=list(made[variant].steps),
            limits={"dynamic_axes": ["batch"]},
            runs=3,
        )
        assert p.manifest["precision"] == variant
        assert p.manifest["inputs"][0] == {"name": "image", "dtype": "float32", "shape": ["batch", 8, 8, 1]}
        assert_passes(gate(root, d, "integrity", "metadata", "limits", *(("equivalence",) if reference else ())))
    assert made["int8"].steps == (
        "tf2onnx",
        "quant_pre_process",
        "quantize_qdq",
        "target_portable",
        "per_channel",
        "reduce_range",
    )
    assert made["fp16"].size_bytes < made["fp32"].size_bytes
    # TensorFlow's autograph keeps the source of converted functions until the interpreter exits: its own, not ours
    assert [p.name for p in (tmp_path / "tmp").iterdir() if not p.name.startswith("__autograph_generated_file")] == []


def test_int8_needs_calibration_and_bad_variants_are_named(tmp_path):
    fake = SimpleNamespace(inputs=[SimpleNamespace(shape=(None, 4))])
    with pytest.raises(ProducerError, match="calibration: the int8 variant is calibrated on real inputs"):
        keras_convert.convert_keras(fake, tmp_path / "m.onnx", "int8")
    with pytest.raises(ProducerError, match="variant: 'int4' is not one of fp32, fp16, uint8, int8"):
        keras_convert.convert_keras(fake, tmp_path / "m.onnx", "int4")


def test_a_failed_conversion_leaves_no_temporary_files(tmp_path, monkeypatch):
    def broken(*a, **kw):  # type: ignore[no-untyped-def]
        raise ProducerError("tf2onnx could not convert (simulated)")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(keras_convert, "keras_to_onnx", broken)
    fake = SimpleNamespace(inputs=[SimpleNamespace(shape=(None, 4))])
    with pytest.raises(ProducerError, match="simulated"):
        keras_convert.convert_keras(fake, tmp_path / "out" / "m.onnx", "fp16")
    assert list(tmp_path.iterdir()) == []
