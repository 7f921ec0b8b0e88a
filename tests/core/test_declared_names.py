"""The names manifests declare for each model file (the pool's `declared`, for models that carry none) are found
when a model is first asked for, not at discovery: listing the tests resolves no model path for them. What is found
is the same as before: one set of names a model, none where two manifests disagree or a path is refused."""

from __future__ import annotations

from pathlib import Path

from fixtures import artifacts as A
from model_checks.core import session as S
from model_checks.core.pool import ModelPool
from model_checks.core.session import GateSession


def _tree(root: Path) -> Path:
    named = {"inputs": [{"name": "x"}], "outputs": [{"name": "y"}]}
    A.onnx_artifact(root / "one", name="one", **named)
    A.onnx_artifact(root / "same", name="same", file="../one/model.onnx", **named)  # the same names: kept
    A.onnx_artifact(root / "two", name="two", **named)
    A.onnx_artifact(root / "other", name="other", file="../two/model.onnx", inputs=[{"name": "z"}])  # disagree
    A.onnx_artifact(root / "out", name="out", file="../../elsewhere.onnx")  # refused: not among them
    return root


def test_names_are_resolved_at_the_first_read_and_are_what_discovery_found(tmp_path, monkeypatch):
    root = _tree(tmp_path / "arts")
    calls = []
    real = S._names_by_model
    monkeypatch.setattr(S, "_names_by_model", lambda arts: calls.append(len(arts)) or real(arts))
    gs = GateSession(roots=[root])
    assert len(gs.artifacts) == 5 and calls == []  # discovered: nothing resolved for the names yet
    got = gs.pool.declared
    assert calls == [5] and gs.pool.declared is got and calls == [5]  # once
    assert got == {(root / "one" / "model.onnx").resolve(): (("x",), ("y",))}
    assert got == real(gs.artifacts)


def test_declared_names_keep_their_order_whether_given_or_found():
    pool = ModelPool()
    a, b = Path("/m/a.onnx"), Path("/m/b.onnx")
    pool.declare({a: (("x",), None)})
    pool.declare(lambda: {a: (("y",), None), b: (("z",), None)})
    pool.declare({b: (("w",), None)})
    assert pool.declared == {a: (("y",), None), b: (("w",), None)}
