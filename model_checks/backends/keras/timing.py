"""Timing a Keras model or SavedModel for budgets: a traced `tf.function` graph on `/CPU:0` or `/GPU:0`, as a
server runs the model (eager Keras calls would time Python dispatch); `.numpy()` on every output is the
synchronization."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from model_checks.backends.base import Target
from model_checks.backends.keras.loader import keras_modules, load_model, serving_signature, set_threads
from model_checks.core.errors import DeviceUnavailable


def load_runtime() -> None:
    if importlib.util.find_spec("tensorflow") is not None:
        keras_modules()  # Keras 2 selected before TensorFlow is imported


def open_target(path: Path, root: Path, device: str, threads: int | None) -> Target:
    if importlib.util.find_spec("tensorflow") is None:
        raise DeviceUnavailable("timing a Keras model needs tensorflow: pip install 'model-checks[keras]'")
    tf, _ = keras_modules()
    if device == "gpu" and not tf.config.list_physical_devices("GPU"):
        build = "built with CUDA" if tf.test.is_built_with_cuda() else "a CPU-only build"
        raise DeviceUnavailable(
            f"no GPU for TensorFlow: tf.config.list_physical_devices('GPU') is empty (tensorflow {tf.__version__}, {build})"
        )
    pools = set_threads(threads)
    kind, model = load_model(path)
    fn = serving_signature(model, path) if kind == "saved_model" else model
    where = "/GPU:0" if device == "gpu" else "/CPU:0"
    graph = (
        fn
        if kind == "saved_model"
        else tf.function(lambda args: fn(args if len(args) > 1 else args[0], training=False), reduce_retracing=True)
    )

    def run(args: Any) -> Any:
        with tf.device(where):
            out = graph(**args) if kind == "saved_model" else graph(args)
        return [t.numpy() for t in tf.nest.flatten(out)]  # copies every output to host memory: the call is complete

    def convert(feeds: dict[str, np.ndarray]) -> Any:
        with tf.device(where):
            tensors = {n: tf.constant(a) for n, a in feeds.items()}
        return tensors if kind == "saved_model" else list(tensors.values())

    what = f"tensorflow {tf.__version__} ({kind}) on {where.strip('/')}, {pools} intra-op thread(s)"
    return Target(what, run=run, convert=convert)
