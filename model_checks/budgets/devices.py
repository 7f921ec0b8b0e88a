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
from model_checks.errors import ModelChecksError


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
    raise DeviceUnavailable(f"budgets for {fmt} artifacts are not measured by this version of model-checks (onnx and torchscript are)")


RUNTIMES = {"onnx": ("onnx", "onnxruntime"), "torchscript": ("torch",)}


def load_runtime(fmt: str) -> None:
    """Import the framework that runs `fmt`, so that its import time is not counted as session creation."""
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
