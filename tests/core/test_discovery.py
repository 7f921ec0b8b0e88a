"""Discovery: no manifest or policy ends the session, and discovery runs once (issue 11)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtures import bad_artifacts
from model_checks.core.discovery import discover


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.symlink_to("nowhere.yaml"), "nowhere.yaml does not exist"),
        (lambda p: os.mkfifo(p), "policy.yaml is not a regular file"),
        (lambda p: p.write_text("tolerance:\n  <<: {rel_l2: 1}\n"), "merge keys (<<) are not allowed"),
        (
            lambda p: p.write_text("tolerance: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n"),
            "nested more than 64 levels deep",
        ),
    ],
)
def test_a_bad_policy_fails_each_artifact_and_discovery_runs_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make, message
) -> None:
    root = tmp_path / "artifacts"
    for name in ("a", "b"):
        bad_artifacts.model(root / name)
    make(root / "policy.yaml")
    from model_checks.core import session

    calls = []
    monkeypatch.setattr(session, "discover", lambda roots: calls.append(roots) or discover(roots))
    gs = session.GateSession(roots=[root])
    for _ in range(3):
        gs.by_dir(root / "a")
    assert len(calls) == 1
    assert [a.id for a in gs.artifacts] == ["invalid:a", "invalid:b"]
    assert all(message in (a.error or "") for a in gs.artifacts), [a.error for a in gs.artifacts]
