"""PyTorch precision variants measured against fp32: fp16 through `torch.autocast` where the device supports
it, and dynamic int8 quantization of `Linear` layers; each with its size, latency and agreement."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from model_checks.core.metrics import rel_l2, top1_agreement
from model_checks.producers.figures import Timing, timing


@dataclass(frozen=True)
class PrecisionVariant:
    """One variant of a PyTorch model: its serialized size, its latency at the batch measured, and how often
    its top-1 agrees with fp32 (with the relative L2 error of its outputs)."""

    name: str
    size_bytes: int
    timing: Timing
    top1_agreement: float
    rel_l2: float

    def __str__(self) -> str:
        return (
            f"{self.name:<12} {self.size_bytes / 1e6:8.3f} MB  {self.timing.p50_ms:8.3f} ms p50  "
            f"{self.timing.throughput_per_s:10.0f}/s  top-1 agreement {self.top1_agreement:.4f}  rel_l2 {self.rel_l2:.2e}"
        )


def state_size(model: Any) -> int:
    """Bytes of the model's state_dict as torch.save writes it."""
    import torch

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def autocast_supported(device: str = "cpu") -> bool:
    import torch

    try:
        return bool(torch.amp.autocast_mode.is_autocast_available(device)) and (
            device != "cuda" or torch.cuda.is_available()
        )
    except Exception:
        return False


def fp16_autocast(model: Any, device: str = "cpu") -> Callable[[Any], Any]:
    """`model` wrapped to run under `torch.autocast(device, float16)`; ops autocast lists run in fp16."""
    import torch

    if not autocast_supported(device):
        raise RuntimeError(f"torch.autocast does not support {device} here")

    def run(x: Any) -> Any:
        with torch.no_grad(), torch.autocast(device_type=device, dtype=torch.float16):
            return model(x).float()

    return run


def dynamic_int8(model: Any) -> Any:
    """A copy of `model` whose `Linear` layers are dynamically quantized to int8 (weights int8, activations
    quantized per batch at run time)."""
    import copy

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.ao.quantization is deprecated in favour of torchao
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.Linear}, dtype=torch.qint8)


def _measure(
    name: str, size: int, call: Callable[[Any], Any], x: Any, x1: Any, ref: np.ndarray, runs: int
) -> PrecisionVariant:
    import torch

    with torch.no_grad():
        out = call(x).detach().float().numpy()
        t = timing(lambda: call(x1), batch=len(x1), runs=runs, desc=f"timing {name}")
    return PrecisionVariant(name, size, t, top1_agreement(out, ref), rel_l2(out, ref))


def precision_variants(
    model: Any, x: Any, batch: int = 1, runs: int = 50, device: str = "cpu"
) -> list[PrecisionVariant]:
    """fp32, fp16 (autocast, when `device` supports it) and int8 dynamic of `model`, measured on `x`
    (agreement over all of `x`; latency at `batch`). Autocast keeps fp32 weights, so its size is fp32's."""
    import torch

    model = model.eval()
    x1 = x[:batch]
    with torch.no_grad():
        ref = model(x).numpy()
    fp32_size = state_size(model)
    out = [_measure("fp32", fp32_size, model, x, x1, ref, runs)]
    if autocast_supported(device):
        out.append(_measure("fp16-autocast", fp32_size, fp16_autocast(model, device), x, x1, ref, runs))
    q = dynamic_int8(model)
    out.append(_measure("int8-dynamic", state_size(q), q, x, x1, ref, runs))
    return out
