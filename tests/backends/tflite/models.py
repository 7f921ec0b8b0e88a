"""Helpers for the TFLite tests: a tiny Keras CNN, seeded images, models TFLite has no builtin for, and
mutants whose quantization parameters are rewritten in the flatbuffer's object API."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHAPE = (6, 6, 1)


def tiny(seed: int = 0):  # type: ignore[no-untyped-def]
    from model_checks.backends.keras.loader import keras_modules

    _, keras = keras_modules()
    keras.utils.set_random_seed(seed)
    i = keras.Input(SHAPE, name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu")(i)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu")(x)  # 2048 weights: over the converter's floor for dynamic range
    return keras.Model(i, keras.layers.Dense(5, name="logits")(x), name="tiny")


def images(n: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, *SHAPE)).astype(np.float32)


def op_model(tf, select_ops: bool) -> bytes:  # type: ignore[no-untyped-def]
    """A model whose one op (MatrixInverse) TFLite has no builtin for: a Flex op with SELECT_TF_OPS, else a
    custom op."""

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="a")])
    def f(a):  # type: ignore[no-untyped-def]
        return {"inverse": tf.reshape(tf.linalg.inv(tf.reshape(a, [-1, 2, 2])), [-1, 4])}

    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    if select_ops:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    else:
        conv.allow_custom_ops = True
    return conv.convert()


def mutate(src: Path, dst: Path, tensor: str, scale_by: float = 1.0, zero_point: int | None = None) -> Path:
    """`src` with the quantization of its input or output `tensor` (signature name) rewritten: scale times
    `scale_by`, zero point replaced; written to `dst` with the TFL3 identifier."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from model_checks.backends.tflite.loader import open_interpreter, signature_io

    ins, outs = signature_io(open_interpreter(src))
    index = dict((*ins, *outs))[tensor]["index"]
    model = schema.ModelT.InitFromPackedBuf(bytearray(src.read_bytes()), 0)
    q = model.subgraphs[0].tensors[index].quantization
    q.scale = [float(s) * scale_by for s in q.scale]
    if zero_point is not None:
        q.zeroPoint = [zero_point]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))
    return dst
