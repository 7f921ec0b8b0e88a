"""The gate's items carry their marks and keywords as Node.add_marker would have added them (the plugin adds them
all at once, once a session per check and device): -m and -k select the same items, a per-device item carries its
device's marker, and without pytest-benchmark its skip mark."""

from __future__ import annotations

import pytest

from fixtures import artifacts as A


@pytest.fixture
def arts(pytester):
    root = pytester.path / "arts"
    budgets = {"cpu": {"latency_ms": {"p50": 100.0}}, "gpu": {"latency_ms": {"p50": 100.0}}}
    A.onnx_artifact(root / "a", name="a", budgets=budgets, serving={"rate_per_s": 10})
    A.onnx_artifact(root / "b", name="b")
    return root


def _items(pytester, *args):
    items, _ = pytester.inline_genitems("--model-checks", "arts", "-p", "no:cacheprovider", *args)
    return {i.nodeid.split("::")[1]: i for i in items}


def test_marks_and_keywords_are_those_add_marker_gives(pytester, arts):
    items = _items(pytester)
    marks = {name: [m.name for m in i.iter_markers()] for name, i in items.items()}
    assert marks["test_manifest[a@1.0]"] == ["model_checks"]
    assert marks["test_latency[a@1.0-cpu]"] == ["model_checks", "cpu"]
    assert marks["test_latency[a@1.0-gpu]"] == ["model_checks", "gpu"]
    assert marks["test_serving[a@1.0]"] == ["model_checks", "serving"]
    for name, item in items.items():  # each mark under its name, as add_marker puts it (pytest 8: its decorator)
        assert all(getattr(k := item.keywords[m.name], "mark", k) is m for m in item.own_markers), name
    # two items of one check share the session's mark objects, never each other's list
    assert items["test_manifest[a@1.0]"].own_markers is not items["test_manifest[b@1.0]"].own_markers


def _selected(pytester, *args):
    r = pytester.runpytest("--model-checks", "arts", "-p", "no:cacheprovider", "--collect-only", "-q", *args)
    return sorted(line.split("::")[1] for line in r.outlines if "::" in line)


def test_m_and_k_select_by_them(pytester, arts):
    assert _selected(pytester, "-m", "cpu") == ["test_latency[a@1.0-cpu]"]
    assert _selected(pytester, "-m", "gpu or serving") == ["test_latency[a@1.0-gpu]", "test_serving[a@1.0]"]
    assert _selected(pytester, "-m", "not model_checks") == []
    assert _selected(pytester, "-k", "gpu or (manifest and b)") == ["test_latency[a@1.0-gpu]", "test_manifest[b@1.0]"]
    assert len(_selected(pytester)) == len(_items(pytester)) == 15


def test_without_pytest_benchmark_a_budget_item_carries_the_skip(pytester, arts):
    item = _items(pytester, "-p", "no:benchmark")["test_latency[a@1.0-cpu]"]
    assert [m.name for m in item.iter_markers()] == ["model_checks", "cpu", "skip"]
    assert item.get_closest_marker("skip").kwargs == {
        "reason": "pytest-benchmark is disabled (-p no:benchmark): budgets are measured through its benchmark fixture"
    }


def test_the_release_plan_is_made_at_the_first_teardown_from_the_final_items(pytester, arts, monkeypatch):
    """A listing (--collect-only) resolves no artifact's models for a plan it never uses; a run makes the plan from
    the items it runs, before the first release: each model after the last item that may need it."""
    from model_checks.core.session import GateSession

    asked = []
    models_of = GateSession.models_of
    monkeypatch.setattr(GateSession, "models_of", lambda self, a: asked.append(a.id) or models_of(self, a))
    pytester.runpytest_inprocess("--model-checks", "arts", "-p", "no:cacheprovider", "--collect-only", "-q")
    assert asked == []
    pytester.makeconftest(
        "import pytest\n"
        "from model_checks.plugin.state import RELEASE_KEY\n"
        "@pytest.hookimpl(trylast=True)\n"
        "def pytest_sessionfinish(session):\n"
        "    plan = session.config.stash[RELEASE_KEY]\n"
        "    print('PLAN', sorted((k.split('::')[1], [p.parent.name for p in v]) for k, v in plan.items()))\n"
        "    print('ITEMS', [i.nodeid.split('::')[1] for i in session.items])\n"
    )
    r = pytester.runpytest_inprocess("--model-checks", "arts", "-p", "no:cacheprovider", "-s", "-k", "manifest or b")
    assert r.parseoutcomes()["deselected"] == 8 and "failed" not in r.parseoutcomes()
    assert sorted(asked) == ["a@1.0", "b@1.0"]  # once an artifact
    said = {k: line.partition(k + " ")[2] for line in r.outlines for k in ("PLAN", "ITEMS") if k + " [" in line}
    items = eval(said["ITEMS"])  # noqa: S307 - our own print
    last = {a: [i for i in items if f"[{a}@" in i][-1] for a in "ab"}
    assert last == {"a": "test_manifest[a@1.0]", "b": "test_accuracy[b@1.0]"}
    assert said["PLAN"] == str(sorted((last[a], [a]) for a in "ab"))


def test_an_artifact_s_items_report_at_its_manifest_worked_out_once(pytester, arts, monkeypatch):
    """Every item of an artifact, and each of its skips, reports at its metadata.yaml, relative to where pytest was
    started: the path is worked out once for the artifact, not for each item and again for each skip."""
    import os

    items = _items(pytester)
    relpath, calls = os.path.relpath, []
    monkeypatch.setattr(os.path, "relpath", lambda *a: calls.append(a) or relpath(*a))
    for _ in range(2):  # an item's location, then its skip's
        where = {name: item.reportinfo() for name, item in items.items()}
    assert where["test_manifest[a@1.0]"] == ("arts/a/metadata.yaml", 0, "test_manifest[a@1.0]")
    assert where["test_latency[a@1.0-cpu]"] == ("arts/a/metadata.yaml", 0, "test_latency[a@1.0-cpu]")
    assert where["test_integrity[b@1.0]"] == ("arts/b/metadata.yaml", 0, "test_integrity[b@1.0]")
    assert len(calls) <= 2  # at most one for each artifact (none where collection asked already)
