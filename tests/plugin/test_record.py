"""The facts `plugin.verdict.record` attaches to a gate test (junit properties; summary.md and the nightly report
read them back with `read_record`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_checks.core.artifact import Artifact
from model_checks.core.results import CheckResult
from model_checks.plugin.state import ITEM_KEY
from model_checks.plugin.verdict import read_record, record


class _Item:
    def __init__(self, artifact: Artifact, check: str):
        self.stash = pytest.Stash()
        self.stash[ITEM_KEY] = (artifact, None, check)
        self.user_properties: list = []


def test_an_artifact_s_directory_is_named_relative_to_the_rootdir_worked_out_once(tmp_path, monkeypatch):
    """`dir` is the artifact's directory relative to the rootdir (as it is, outside it), worked out once for the
    artifact rather than for each of its tests."""
    rootdir = tmp_path / "repo"
    inside = Artifact("a@1", rootdir / "arts", rootdir / "arts" / "a", None)
    outside = Artifact("b@1", tmp_path / "elsewhere", tmp_path / "elsewhere" / "b", None)
    relative_to, calls = Path.relative_to, []
    monkeypatch.setattr(Path, "relative_to", lambda self, *a: calls.append(self) or relative_to(self, *a))
    found = {}
    for art in (inside, outside):
        for check in ("manifest", "integrity", "metadata"):
            item = _Item(art, check)
            record(item, art, CheckResult(check, True, "fine"), rootdir)  # type: ignore[arg-type]
            found[art.id, check] = read_record(item.user_properties)
    assert {k: v["dir"] for k, v in found.items()} == {
        **{("a@1", c): "arts/a" for c in ("manifest", "integrity", "metadata")},
        **{("b@1", c): (tmp_path / "elsewhere" / "b").as_posix() for c in ("manifest", "integrity", "metadata")},
    }
    assert found["a@1", "integrity"] == {
        "artifact": "a@1",
        "dir": "arts/a",
        "check": "integrity",
        "variant": None,
        "ok": True,
        "skipped": None,
        "reason": None,
        "format": None,
        "figures": {},
    }
    # once for the artifact (is_relative_to, which may ask relative_to, then relative_to), not again for each test
    assert calls.count(inside.dir) <= 2
