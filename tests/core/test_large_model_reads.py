"""What a large model costs the gate (issue 24, row d): each model loaded once per session even when a variant and
its reference are both held alone in memory, and its files read no more often than the checks need."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fixtures import artifacts as A
from fixtures import onnx_models
from model_checks.checks.context import CheckContext
from model_checks.core import pool as pool_module
from model_checks.core.session import GateSession
from model_checks.isolation.limits import Limits
from model_checks.isolation.workers import Worker

LIMITS = Limits(memory_mb=2048, timeout_s=60)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(op, model file's parent directory name) of each request the parent sends and waits on, in order."""
    ops: list[tuple[str, str]] = []
    real = Worker.request

    def counting(self, op, args, what, requests=1):  # type: ignore[no-untyped-def]
        ops.append((op, Path(args[0]).parent.name if op in ("load", "validate", "facts") else ""))
        return real(self, op, args, what, requests)

    monkeypatch.setattr(Worker, "request", counting)
    return ops


def fp16_variant_of_fp32(root: Path) -> None:
    """big_fp32 and big_fp16 (its reference big_fp32's model), as bench/overhead.py's row d, a few bytes each."""
    x = np.random.default_rng(0).uniform(0, 1, (3, 4)).astype(np.float32)
    ref = A.onnx_artifact(root / "big_fp32", onnx_models.linear(), name="big_fp32")
    var = A.onnx_artifact(
        root / "big_fp16",
        onnx_models.linear(dtype=np.float16),
        name="big_fp16",
        reference={"path": "../big_fp32/model.onnx"},
        samples="samples.npz",
        tolerance={"rel_l2": 0.01},
        outputs=[{"name": "logits", "dtype": "float16"}],
    )
    np.savez(var / "samples.npz", input=x)
    assert ref.is_dir()


def test_a_variant_and_its_reference_held_alone_are_each_loaded_once(
    tmp_path: Path, sent: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool_module, "LARGE_MODEL_BYTES", 0)  # every model counts as large: held alone
    fp16_variant_of_fp32(tmp_path)
    gs = GateSession([tmp_path], isolation=LIMITS)
    try:
        by_name = {a.id.split("@")[0]: a for a in gs.artifacts}
        results = [
            gs.result(check, by_name[name])
            for name, checks in (
                ("big_fp16", ("integrity", "metadata", "equivalence")),
                ("big_fp32", ("integrity", "metadata")),
            )
            for check in checks  # the gate's order: by directory
        ]
        cases = CheckContext(by_name["big_fp16"], gs.pool).cases()
    finally:
        gs.pool.close()
    assert [bool(r) for r in results] == [True] * 5, [str(r) for r in results]
    assert "skipped" not in str(results[2]) and "matches ../big_fp32/model.onnx" in str(results[2])
    loads = [where for op, where in sent if op == "load"]
    # the variant for integrity, then its reference for equivalence, which the reference's own checks reuse: naming
    # the cases reads the reference's interface off its facts instead of loading it while the variant is held
    assert loads == ["big_fp16", "big_fp32"]
    # the case still names the cast its reference's feeds get, as when the reference was loaded for it
    assert cases[0].label.endswith(
        "; for the model 'input' cast float32 -> float16; for the reference 'input' cast float16 -> float32"
    )
