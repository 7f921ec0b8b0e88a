"""TFLite models for the tests, converted once a session from a tiny Keras CNN (TensorFlow is imported here,
about 5 s): float32, dynamic-range and full-integer int8 ones, models with Flex ops and one with a custom op.
The mutants (quantization parameters rewritten) are made from these by `mutate`, in the flatbuffer's object API."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ai_edge_litert")
pytest.importorskip("tensorflow")
pytest.importorskip("tf_keras")

from tests.backends.tflite.models import images, inverse_times_determinant, op_model, tiny  # noqa: E402


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """Paths by name: keras (the source, .keras), float32, dynamic, int8, uint8, flex (one Flex op), flex2 (two
    Flex ops feeding builtins), custom."""
    from model_checks.backends.keras.loader import keras_modules
    from model_checks.producers.tflite_convert import to_tflite

    tf, _ = keras_modules()
    d = tmp_path_factory.mktemp("tflite-models")
    model = tiny()
    model.save(d / "model.keras")
    x = images(64, seed=1)
    out = {"keras": d / "model.keras"}
    for name, mode, io in (
        ("float32", "float32", "int8"),
        ("dynamic", "dynamic", "int8"),
        ("int8", "int8", "int8"),
        ("uint8", "int8", "uint8"),
    ):
        out[name] = d / f"{name}.tflite"
        out[name].write_bytes(to_tflite(model, mode, x, io))
    for name, select in (("flex", True), ("custom", False)):
        out[name] = d / f"{name}.tflite"
        out[name].write_bytes(op_model(tf, select))
    out["flex2"] = d / "flex2.tflite"
    out["flex2"].write_bytes(op_model(tf, True, inverse_times_determinant))
    return out
