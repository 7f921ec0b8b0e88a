"""scikit-learn's digits (8x8 grey images, 10 classes), scaled to [0, 1], with a fixed stratified split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEED = 0
TEST_SIZE = 0.25


@dataclass(frozen=True)
class Digits:
    """Images as (n, 8, 8) float32 in [0, 1] and labels as int64; `nchw`/`nhwc` add the channel axis."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @staticmethod
    def nchw(x: np.ndarray) -> np.ndarray:
        return x[:, None, :, :]

    @staticmethod
    def nhwc(x: np.ndarray) -> np.ndarray:
        return x[:, :, :, None]


def digits() -> Digits:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_SIZE, random_state=SEED, stratify=y)
    return Digits(x_tr, y_tr, x_te, y_te)
