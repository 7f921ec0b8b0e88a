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


def matrix_inverse(tf):  # type: ignore[no-untyped-def]
    """One op (MatrixInverse) TFLite has no builtin for, between two builtin reshapes; a dynamic batch."""

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="a")])
    def f(a):  # type: ignore[no-untyped-def]
        return {"inverse": tf.reshape(tf.linalg.inv(tf.reshape(a, [-1, 2, 2])), [-1, 4])}

    return f


def inverse_times_determinant(tf):  # type: ignore[no-untyped-def]
    """Two Flex ops (MatrixInverse, MatrixDeterminant) reading one builtin's output and feeding builtins
    (reshape, mul, add, relu); a dynamic batch."""

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="a")])
    def f(a):  # type: ignore[no-untyped-def]
        m = tf.reshape(a, [-1, 2, 2])
        scaled = tf.reshape(tf.linalg.inv(m), [-1, 4]) * tf.reshape(tf.linalg.det(m), [-1, 1])
        return {"scaled": tf.nn.relu(scaled + 0.25)}

    return f


def op_model(tf, select_ops: bool, function=matrix_inverse) -> bytes:  # type: ignore[no-untyped-def]
    """`function`'s model: its TensorFlow ops as Flex ops with SELECT_TF_OPS, else as custom ops."""
    f = function(tf)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    if select_ops:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    else:
        conv.allow_custom_ops = True
    return conv.convert()


def two_signatures(tf):  # type: ignore[no-untyped-def]
    """A tf.Module with two signatures, `inverse` and `determinant`, each with one Flex op: two subgraphs, whose
    Flex nodes sit at the same node index in each."""

    class TwoOps(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="a")])
        def inverse(self, a):  # type: ignore[no-untyped-def]
            return {"out": tf.reshape(tf.linalg.inv(tf.reshape(a, [-1, 2, 2])), [-1, 4])}

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="a")])
        def determinant(self, a):  # type: ignore[no-untyped-def]
            return {"out": tf.linalg.det(tf.reshape(a, [-1, 2, 2])) + 1.0}

    return TwoOps()


def two_signature_model(tf, module) -> bytes:  # type: ignore[no-untyped-def]
    fns = [module.inverse.get_concrete_function(), module.determinant.get_concrete_function()]
    conv = tf.lite.TFLiteConverter.from_concrete_functions(fns, module)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    return conv.convert()


def matrices(n: int, seed: int = 0) -> np.ndarray:
    """`n` invertible 2x2 matrices, flattened: a dominant diagonal keeps them well away from singular."""
    a = np.random.default_rng(seed).uniform(-1, 1, (n, 4)).astype(np.float32)
    a[:, [0, 3]] += np.where(a[:, [0, 3]] >= 0, 2.0, -2.0).astype(np.float32)
    return a


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


def flex_op_renamed(src: Path, dst: Path, op: str) -> Path:
    """`src` with each Flex node's NodeDef naming TensorFlow op `op` instead (its custom options rewritten)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    from flatbuffers import flexbuffers
    from tensorflow.core.framework import node_def_pb2

    from model_checks.backends.tflite.flex import parse_custom_options

    model = schema.ModelT.InitFromPackedBuf(bytearray(src.read_bytes()), 0)
    for node in model.subgraphs[0].operators:
        if (model.operatorCodes[node.opcodeIndex].customCode or b"").startswith(b"Flex"):
            nd = node_def_pb2.NodeDef.FromString(parse_custom_options(bytes(node.customOptions))[1])
            nd.op = op
            node.customOptions = list(flexbuffers.Dumps([op, nd.SerializeToString()]))
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))
    return dst
