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


def _report(when: str, **facts: object) -> object:
    return type("Report", (), {"when": when, "user_properties": [(f"model_checks.{k}", v) for k, v in facts.items()]})()


def test_the_report_hooks_read_the_facts_of_the_tests_they_concern_only(monkeypatch):
    """The gate's hook keeps the baselines a test saved, pytest-benchmark's the served figures: each reads a test's
    facts only where it holds what it keeps (a baseline's sessions, a serving check), not for every test."""
    from types import SimpleNamespace

    from model_checks.plugin import benchmark, collect, verdict

    read = []
    monkeypatch.setattr(verdict, "read_record", lambda props: read.append(props) or read_record(props))
    monkeypatch.setattr(benchmark, "read_record", verdict.read_record)
    gate, hooks = SimpleNamespace(saved={}), benchmark.BenchmarkHooks()
    plain = _report("call", artifact="a@1", check="equivalence", ok=True, rel_l2=0.0)
    budget = _report("call", artifact="a@1", check="latency", ok=True, device="cpu", baseline_sessions=2)
    for report in (plain, budget, _report("setup", artifact="a@1", check="latency", baseline_sessions=2)):
        collect.Gate.pytest_runtest_logreport(gate, report)  # type: ignore[arg-type]
        hooks.pytest_runtest_logreport(report)  # type: ignore[arg-type]
    assert gate.saved == {("a@1", "latency", "cpu"): 2}
    assert read == [budget.user_properties]  # the gate's, for the budget's call; none of pytest-benchmark's
    served = _report("call", artifact="s@1", check="serving", ok=True, serving_p50_ms=2.0, serving_p99_ms=7.0)
    served.user_properties = [list(p) for p in served.user_properties]  # (as xdist hands reports back: lists)
    hooks.pytest_runtest_logreport(served)  # type: ignore[arg-type]
    assert read[1:] == [served.user_properties]
