"""Fixtures for the producer tests: small real models, and the gate run on what a producer wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from tests.producers.helpers import make_cnn

torch = pytest.importorskip("torch")


@pytest.fixture
def cnn():  # type: ignore[no-untyped-def]
    return make_cnn()


@pytest.fixture
def images() -> np.ndarray:
    """32 seeded [1, 8, 8] images in [0, 1)."""
    return np.random.default_rng(0).uniform(0, 1, (32, 1, 8, 8)).astype(np.float32)


@pytest.fixture
def fp32_onnx(tmp_path: Path, cnn, images: np.ndarray) -> Path:  # type: ignore[no-untyped-def]
    """The CNN exported (BatchNormalization kept) to root/fp32/model.onnx."""
    from model_checks.producers.torch_export import export_onnx

    path = tmp_path / "root" / "fp32" / "model.onnx"
    export_onnx(cnn, torch.from_numpy(images[:4]), path, output_names=("logits",), fold_constants=False)
    return path


@pytest.fixture
def gate() -> Callable[..., list]:
    """`gate(root, artifact_dir, "metadata", "equivalence")`: the gate's own checks on one artifact, as values."""
    from model_checks.core.session import GateSession

    def run(root: Path, d: Path, *checks: str) -> list:
        gs = GateSession(roots=[root], trust_code=True)
        art = gs.by_dir(d)
        assert art is not None, f"no artifact found at {d}"
        assert art.manifest is not None, art.error
        try:
            return [gs.run_check(c, art) for c in checks]
        finally:
            gs.pool.close()

    return run
