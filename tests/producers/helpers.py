"""Helpers for the producer tests (imported as tests.producers.helpers; fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_cnn(seed: int = 0):  # type: ignore[no-untyped-def]
    """Conv -> BatchNorm (non-trivial statistics) -> ReLU -> Linear on [batch, 1, 8, 8]; 10 classes."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10)
    )
    bn = model[1]
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    return model.eval()


def record(path: Path, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> Path:
    """A recorded reference for equivalence: arrays input:<name> and output:<name>."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"input:{k}": v for k, v in inputs.items()}, **{f"output:{k}": v for k, v in outputs.items()})
    return path


def assert_passes(results: list) -> None:
    """Every CheckResult holds and none was skipped; otherwise show them as the gate would."""
    __tracebackhide__ = True
    failed = [r for r in results if not r or r.skipped]
    assert not failed, "\n\n".join(str(r) for r in failed)
