"""Timing a TorchScript model for budgets: torch on the CPU with the budget's threads, or on CUDA with
`torch.cuda.synchronize()` inside the timed call (kernels launch asynchronously)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from model_checks.backends.base import Target
from model_checks.backends.torchscript.loader import load_module, set_threads, torch_module
from model_checks.core.errors import DeviceUnavailable, MissingDependencyError


def load_runtime() -> None:
    torch_module()


def open_target(path: Path, root: Path, device: str, threads: int | None) -> Target:
    try:
        torch = torch_module()
    except MissingDependencyError as e:
        raise DeviceUnavailable(f"timing a TorchScript model needs torch: {e}") from None
    if device == "gpu" and not torch.cuda.is_available():
        raise DeviceUnavailable(
            f"no GPU for torch: torch.cuda.is_available() is False (torch {torch.__version__}, "
            f"built for CUDA {torch.version.cuda or 'none'})"
        )
    dev = torch.device("cuda" if device == "gpu" else "cpu")
    before = set_threads(threads)
    module = load_module(path, map_location=dev)  # the archive is checked before torch reads it
    sync = torch.cuda.synchronize if device == "gpu" else (lambda: None)

    def run(args: tuple) -> Any:
        with torch.inference_mode():
            out = module(*args)
        sync()  # wait for the kernels inside the timed call
        return out

    def convert(feeds: dict[str, np.ndarray]) -> tuple:
        return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(dev) for a in feeds.values())

    what = f"torch {torch.__version__} on {torch.cuda.get_device_name() if device == 'gpu' else 'cpu'}, {torch.get_num_threads()} thread(s)"
    return Target(what, run=run, convert=convert, release=lambda: set_threads(before))
