"""The gpu path without a GPU: a clean skip whose reason names what is missing, never a CPU measurement."""

import importlib.util

import pytest

from fixtures import artifacts
from model_checks.backends import load_runtime, open_target
from model_checks.core.errors import DeviceUnavailable


@pytest.fixture
def onnx_model(tmp_path):
    return artifacts.onnx_artifact(tmp_path / "a") / "model.onnx"


def test_onnx_gpu_without_cuda_provider_names_what_is_missing(onnx_model, monkeypatch):
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(DeviceUnavailable, match="CUDAExecutionProvider is not available .*install onnxruntime-gpu"):
        open_target(onnx_model, "onnx", onnx_model.parent.parent, "gpu", 1)


def test_onnx_gpu_that_falls_back_to_cpu_is_refused(onnx_model, monkeypatch):
    """onnxruntime quietly runs on the CPU when CUDA fails to load: that must not be measured as the GPU."""
    import onnxruntime as ort

    from model_checks.backends.onnx import runner

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    real = runner.OnnxRunner.__init__

    def on_cpu(self, path, root, threads=None, providers=None):
        real(self, path, root, threads, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(runner.OnnxRunner, "__init__", on_cpu)
    with pytest.raises(DeviceUnavailable, match="could not start CUDAExecutionProvider .*runs on CPUExecutionProvider"):
        open_target(onnx_model, "onnx", onnx_model.parent.parent, "gpu", 1)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_gpu_without_cuda_names_what_is_missing(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(4, 3)), str(path))
    with pytest.raises(DeviceUnavailable, match=r"torch.cuda.is_available\(\) is False"):
        open_target(path, "torchscript", tmp_path, "gpu", 1, trust_code=True)


def test_cpu_target_runs_on_the_cpu_provider(onnx_model):
    import numpy as np

    t = open_target(onnx_model, "onnx", onnx_model.parent.parent, "cpu", 1)
    t.prepare({"input": np.ones((1, 4), np.float32)})
    assert t.call()[0].shape == (1, 3) and "CPUExecutionProvider, 1 thread" in t.description
    t.close()


def test_unsupported_format_is_unavailable_not_a_crash(tmp_path):
    from model_checks.backends.registry import formats

    with pytest.raises(
        DeviceUnavailable, match=rf"budgets for nosuch artifacts are not measured .*\({', '.join(formats())} are\)"
    ):
        open_target(tmp_path / "m.nosuch", "nosuch", tmp_path, "cpu", 1)


@pytest.mark.gpu
def test_gpu_measures_on_cuda_when_there_is_one(onnx_model):
    """Runs on a machine with CUDA; elsewhere it skips and says what is missing."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"no CUDA here: onnxruntime {ort.__version__} has {', '.join(ort.get_available_providers())}")
    t = open_target(onnx_model, "onnx", onnx_model.parent.parent, "gpu", None)
    assert "CUDAExecutionProvider" in t.description
    t.close()


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torchscript_gpu_runs_on_cuda_and_synchronizes(tmp_path, monkeypatch):
    """Runs on a machine with CUDA; elsewhere it skips and says what is missing. The timed call must wait for the
    kernels: torch.cuda.synchronize is called inside every call."""
    import numpy as np
    import torch

    if not torch.cuda.is_available():
        pytest.skip(f"no CUDA here: torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'}")
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(4, 3)), str(path))
    synced = []
    real = torch.cuda.synchronize
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: (synced.append(1), real(*a)))
    t = open_target(path, "torchscript", tmp_path, "gpu", 1, trust_code=True)
    t.prepare({"x": np.ones((2, 4), np.float32)})
    out = t.call()
    assert out.device.type == "cuda" and synced == [1] and torch.cuda.get_device_name() in t.description
    t.close()


def test_runtime_import_is_kept_out_of_session_creation():
    load_runtime("onnx")
    import sys

    assert "onnxruntime" in sys.modules
