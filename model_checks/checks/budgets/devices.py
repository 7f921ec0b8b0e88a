"""What a budget runs: a model opened for timing on one device, whose `call()` is one synchronized inference
on prepared inputs. A GPU that is not there is a `DeviceUnavailable` that names what is missing: nothing is
silently measured on the CPU instead."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from model_checks.backends import require_trust_for
from model_checks.core.errors import ModelChecksError


class DeviceUnavailable(ModelChecksError):
    """The device a budget names is not usable here; the message says what is missing."""


@dataclass
class Target:
    """A model ready to be timed: `call()` runs it once on the inputs given to `prepare` and returns when the
    result is complete (on a GPU: synchronized, so a timer around it measures the work, not the launch)."""

    description: str
    run: Callable[[Any], Any]
    convert: Callable[[dict[str, np.ndarray]], Any]
    release: Callable[[], None] = lambda: None
    _prepared: Any = field(default=None, init=False)

    def prepare(self, feeds: dict[str, np.ndarray]) -> None:
        self._prepared = self.convert(feeds)

    def call(self) -> Any:
        return self.run(self._prepared)

    def close(self) -> None:
        self.release()
        self._prepared = None


def open_target(path: Path, fmt: str, root: Path, device: str, threads: int | None, trust_code: bool = False) -> Target:
    """Open `path` for timing on `device` ("cpu" or "gpu") with `threads` intra-op threads."""
    require_trust_for(path, fmt, trust_code)
    if fmt == "onnx":
        return _onnx(path, root, device, threads)
    if fmt == "torchscript":
        return _torchscript(path, device, threads)
    if fmt in ("keras", "saved_model"):
        return _keras(path, device, threads)
    raise DeviceUnavailable(f"budgets for {fmt} artifacts are not measured by this version of model-checks (onnx, torchscript and keras are)")


RUNTIMES = {"onnx": ("onnx", "onnxruntime"), "torchscript": ("torch",)}


def load_runtime(fmt: str) -> None:
    """Import the framework that runs `fmt`, so that its import time is not counted as session creation."""
    if fmt in ("keras", "saved_model"):
        if importlib.util.find_spec("tensorflow") is not None:
            from model_checks.backends.keras.loader import keras_modules

            keras_modules()  # Keras 2 selected before TensorFlow is imported
        return
    for name in RUNTIMES.get(fmt, ()):
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


CUDA_EP = "CUDAExecutionProvider"


def _onnx(path: Path, root: Path, device: str, threads: int | None) -> Target:
    import onnxruntime as ort

    from model_checks.backends.onnx.runner import OnnxRunner

    if device == "gpu":
        available = ort.get_available_providers()
        if CUDA_EP not in available:
            raise DeviceUnavailable(f"no GPU for onnxruntime: {CUDA_EP} is not available (onnxruntime {ort.__version__} has "
                                    f"{', '.join(available)}); install onnxruntime-gpu on a machine with CUDA")
        runner = OnnxRunner(path, root, threads, providers=[CUDA_EP])
        used = runner.session.get_providers()
        if not used or used[0] != CUDA_EP:  # onnxruntime falls back to the CPU when CUDA fails to load
            raise DeviceUnavailable(f"onnxruntime could not start {CUDA_EP} (the session runs on {', '.join(used)}): "
                                    "check the CUDA and cuDNN libraries")
        what = f"onnxruntime {ort.__version__} {CUDA_EP}"
    else:
        runner = OnnxRunner(path, root, threads)
        what = f"onnxruntime {ort.__version__} CPUExecutionProvider, {threads or 'default'} thread(s)"
    session = runner.session
    names = [o.name for o in runner.outputs]
    # session.run copies outputs to host memory before it returns: on CUDA that is the synchronization.
    return Target(what, run=lambda feeds: session.run(names, feeds), convert=dict, release=runner.close)


def _torchscript(path: Path, device: str, threads: int | None) -> Target:
    if importlib.util.find_spec("torch") is None:
        raise DeviceUnavailable("timing a TorchScript model needs torch: pip install 'model-checks[torch]'")
    import torch

    if device == "gpu" and not torch.cuda.is_available():
        raise DeviceUnavailable(f"no GPU for torch: torch.cuda.is_available() is False (torch {torch.__version__}, "
                                f"built for CUDA {torch.version.cuda or 'none'})")
    dev = torch.device("cuda" if device == "gpu" else "cpu")
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    module = torch.jit.load(str(path), map_location=dev).eval()
    sync = torch.cuda.synchronize if device == "gpu" else (lambda: None)

    def run(args: tuple) -> Any:
        with torch.inference_mode():
            out = module(*args)
        sync()  # CUDA kernels launch asynchronously: wait for them inside the timed call
        return out

    def convert(feeds: dict[str, np.ndarray]) -> tuple:
        return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(dev) for a in feeds.values())

    what = f"torch {torch.__version__} on {torch.cuda.get_device_name() if device == 'gpu' else 'cpu'}, {torch.get_num_threads()} thread(s)"
    return Target(what, run=run, convert=convert, release=lambda: torch.set_num_threads(before))


def _keras(path: Path, device: str, threads: int | None) -> Target:
    if importlib.util.find_spec("tensorflow") is None:
        raise DeviceUnavailable("timing a Keras model needs tensorflow: pip install 'model-checks[keras]'")
    from model_checks.backends.keras.loader import keras_modules, load_model, serving_signature

    tf, _ = keras_modules()
    if device == "gpu" and not tf.config.list_physical_devices("GPU"):
        build = "built with CUDA" if tf.test.is_built_with_cuda() else "a CPU-only build"
        raise DeviceUnavailable(f"no GPU for TensorFlow: tf.config.list_physical_devices('GPU') is empty (tensorflow {tf.__version__}, {build})")
    pools = "default"
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
            pools = str(threads)
        except RuntimeError:  # TensorFlow has started its thread pools already; they cannot change any more
            pools = f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'} (set before this budget; asked for {threads})"
    kind, model = load_model(path)
    fn = serving_signature(model, path) if kind == "saved_model" else model
    where = "/GPU:0" if device == "gpu" else "/CPU:0"
    # A traced graph, as a server runs the model: eager Keras calls would time Python dispatch, not the model.
    graph = fn if kind == "saved_model" else tf.function(lambda args: fn(args if len(args) > 1 else args[0], training=False), reduce_retracing=True)

    def run(args: Any) -> Any:
        with tf.device(where):
            out = graph(**args) if kind == "saved_model" else graph(args)
        # .numpy() copies every output to host memory: the call is complete, on a GPU too
        return [t.numpy() for t in tf.nest.flatten(out)]

    def convert(feeds: dict[str, np.ndarray]) -> Any:
        with tf.device(where):
            tensors = {n: tf.constant(a) for n, a in feeds.items()}
        return tensors if kind == "saved_model" else list(tensors.values())

    what = f"tensorflow {tf.__version__} ({kind}) on {where.strip('/')}, {pools} intra-op thread(s)"
    return Target(what, run=run, convert=convert)
