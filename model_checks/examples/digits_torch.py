"""The PyTorch family: a small CNN with BatchNormalization (so `fuse_bn_into_conv` has work to show),
trained deterministically on the digits."""

from __future__ import annotations

from typing import Any

import numpy as np

EPOCHS = 25
BATCH = 64


def build() -> Any:
    import torch
    from torch import nn

    class DigitsCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 8, 3, padding=1),
                nn.BatchNorm2d(8),
                nn.ReLU(),
                nn.Conv2d(8, 16, 3, padding=1),
                nn.BatchNorm2d(16),
                nn.ReLU(),
                nn.MaxPool2d(2),
            )
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.features(x))

    return DigitsCNN()


def train(x: np.ndarray, y: np.ndarray, seed: int = 0, epochs: int = EPOCHS) -> Any:
    """The CNN trained on (x NCHW, y) with a fixed seed, on one thread so the result does not depend on the machine's cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model = build()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        g = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(xt), generator=g)
            for i in range(0, len(xt), BATCH):
                idx = order[i : i + BATCH]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
                opt.step()
        return model.eval()
    finally:
        torch.set_num_threads(threads)
