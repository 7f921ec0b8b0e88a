"""What `metadata` costs: onnxoptimizer (which imports onnx into the gate's own process) is asked for its pass names
only when a claimed optimization is neither a leftover the graph can show nor a producer step."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import artifacts as A
from model_checks.backends.onnx import facts as onnx_facts
from model_checks.core.session import GateSession


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = onnx_facts.optimizer_passes

    def counting() -> tuple[str, ...]:
        calls.append(1)
        return real()

    monkeypatch.setattr(onnx_facts, "optimizer_passes", counting)
    return calls


def metadata(root: Path, **claims: object) -> str:
    A.onnx_artifact(root / "m", name="m", **claims)
    gs = GateSession([root])
    return str(gs.run_check("metadata", gs.artifacts[0]))


def test_no_claim_and_a_leftover_claim_need_no_optimizer(tmp_path: Path, asked: list[int]) -> None:
    assert "no claims match the model" in metadata(tmp_path / "a")
    assert "optimization match the model" in metadata(tmp_path / "b", optimization=["eliminate_deadend"])
    assert asked == []


def test_a_misspelt_claim_is_still_named_with_the_pass_it_meant(tmp_path: Path, asked: list[int]) -> None:
    text = metadata(tmp_path, optimization=["fuse_bn_into_cnv"])
    assert (
        "optimization: 'fuse_bn_into_cnv' is not an onnxoptimizer pass or producer step; did you mean "
        "'fuse_bn_into_conv'?   [m/metadata.yaml]"
    ) in text
    assert asked == [1]
