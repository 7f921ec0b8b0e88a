"""A run of the gate's own items leaves the cyclic collector's passes out of the interpreter's exit (issue 24: they
were 50-100 ms of a gate run), and its items and pytest's end of the run out of passes over what collection left
(`Gate._freeze`): the heap is given back as it was to a caller of pytest.main that goes on, a heap the caller froze
is left as it is, and a run with a team's own tests in it keeps the collector and the exit CPython gives it."""

from __future__ import annotations

import atexit
import gc
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from fixtures import artifacts as A
from fixtures.gate_run import run_gate
from model_checks.plugin import collect


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list]:
    """What the run registers with atexit (held back here: this test process's own exit is not the test's)."""
    calls: list = []
    real = atexit.register

    def register(f, *args, **kwargs):  # type: ignore[no-untyped-def]
        if f is not gc.freeze:  # another module's (multiprocessing's, imported during a run): really registered
            return real(f, *args, **kwargs)
        calls.append(f)
        return f

    monkeypatch.setattr(atexit, "register", register)
    collect.exit_without_collection.cache_clear()
    yield calls
    collect.exit_without_collection.cache_clear()


def test_a_gate_only_run_freezes_at_exit_and_gives_the_heap_back(pytester: pytest.Pytester, registered: list) -> None:
    A.onnx_artifact(pytester.path / "arts" / "m")
    frozen = gc.get_freeze_count()
    run = run_gate(pytester, pytester.path / "arts")
    assert run.ret == 0
    assert registered == [gc.freeze]
    assert gc.get_freeze_count() == frozen  # the caller goes on with the collector as it was
    pytester.inline_run("--model-checks", str(pytester.path / "arts"), "-p", "no:cacheprovider")
    assert registered == [gc.freeze]  # once a process, however many runs it makes


def test_a_collect_only_run_of_the_gate_freezes_at_exit_too(pytester: pytest.Pytester, registered: list) -> None:
    A.onnx_artifact(pytester.path / "arts" / "m")
    run_gate(pytester, pytester.path / "arts", "--collect-only")
    assert registered == [gc.freeze]


def test_a_run_with_the_teams_own_tests_keeps_its_exit(pytester: pytest.Pytester, registered: list) -> None:
    A.onnx_artifact(pytester.path / "arts" / "m")
    pytester.makepyfile(test_own="def test_own():\n    assert True\n")
    reprec = pytester.inline_run("--model-checks", str(pytester.path / "arts"), "-p", "no:cacheprovider", ".")
    reports = [r for r in reprec.getreports("pytest_runtest_logreport") if r.when == "call"]
    assert [r.outcome for r in reports if r.nodeid.endswith("test_own")] == ["passed"]
    assert any("metadata.yaml::" in r.nodeid for r in reports) and not any(r.failed for r in reports)
    assert registered == []


def test_a_run_that_gates_nothing_keeps_its_exit(pytester: pytest.Pytester, registered: list) -> None:
    pytester.makepyfile(test_own="def test_own():\n    assert True\n")
    pytester.inline_run("-p", "no:cacheprovider").assertoutcome(passed=1)
    assert registered == []


def test_the_exit_of_a_real_process_runs_frozen(tmp_path: Path) -> None:
    """End to end in a process of its own: the hook is really registered, and it is what runs at exit."""
    A.onnx_artifact(tmp_path / "arts" / "m")
    script = textwrap.dedent("""
        import atexit, gc, sys
        import pytest
        code = pytest.main(["--model-checks", sys.argv[1], "-p", "no:cacheprovider", "-q", "-p", "no:randomly"])
        before = gc.get_freeze_count()
        atexit._run_exitfuncs()
        print("EXIT", int(code), before, gc.get_freeze_count() > 0)
    """)
    line = _said(tmp_path, script, "EXIT ")
    assert line == "EXIT 0 0 True", line


def _said(tmp_path: Path, script: str, tag: str) -> str:
    """The line `script`, run in a process of its own over tmp_path/arts, printed starting with `tag` (else all it
    printed)."""
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "arts")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return next((x for x in out.stdout.splitlines() if x.startswith(tag)), out.stdout + out.stderr)


class FreezeSeen:
    """What the heap's freeze count was at each item's call."""

    def __init__(self) -> None:
        self.items: dict[str, int] = {}

    def pytest_runtest_call(self, item: pytest.Item) -> None:
        self.items[item.nodeid] = gc.get_freeze_count()


@pytest.fixture
def seen() -> FreezeSeen:
    return FreezeSeen()


def test_a_gate_only_run_leaves_what_collection_made_out_of_its_passes(
    pytester: pytest.Pytester, registered: list, seen: FreezeSeen
) -> None:
    A.onnx_artifact(pytester.path / "arts" / "m")
    assert gc.get_freeze_count() == 0
    reprec = pytester.inline_run(
        "--model-checks", str(pytester.path / "arts"), "-p", "no:cacheprovider", plugins=[seen]
    )
    assert reprec.ret == 0
    assert seen.items and all(n > 0 for n in seen.items.values()), seen.items
    assert gc.get_freeze_count() == 0  # given back when the run's cleanup was done


def test_pytests_own_passes_at_the_end_of_a_real_run_leave_it_out_too(tmp_path: Path) -> None:
    """pytest collects garbage at its unconfigure and again at its cleanup (not in pytester's in-process runs): in
    a process of its own both find the heap still frozen, and the caller gets it back."""
    A.onnx_artifact(tmp_path / "arts" / "m")
    script = textwrap.dedent("""
        import gc, sys
        import pytest
        ended, passes = [], []
        class Ended:
            def pytest_sessionfinish(self):
                ended.append(True)
        def collected(phase, info):
            if phase == "start" and info["generation"] == 2 and ended:
                passes.append(gc.get_freeze_count())
        gc.callbacks.append(collected)
        code = pytest.main(["--model-checks", sys.argv[1], "-p", "no:cacheprovider", "-q"], plugins=[Ended()])
        print("PASSES", int(code), len(passes) >= 2 and all(n > 0 for n in passes), gc.get_freeze_count(), passes)
    """)
    line = _said(tmp_path, script, "PASSES ")
    assert line.startswith("PASSES 0 True 0 "), line


def test_a_heap_the_caller_froze_stays_frozen(pytester: pytest.Pytester, registered: list, seen: FreezeSeen) -> None:
    A.onnx_artifact(pytester.path / "arts" / "m")
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        pytester.inline_run("--model-checks", str(pytester.path / "arts"), "-p", "no:cacheprovider", plugins=[seen])
        # neither thawed nor frozen again (the count falls as frozen objects are freed: it never grows)
        assert seen.items and all(0 < n <= frozen for n in seen.items.values()), (frozen, seen.items)
        assert 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


def test_a_run_with_the_teams_own_tests_runs_nothing_frozen(
    pytester: pytest.Pytester, registered: list, seen: FreezeSeen
) -> None:
    A.onnx_artifact(pytester.path / "arts" / "m")
    pytester.makepyfile(test_own="def test_own():\n    assert True\n")
    pytester.inline_run("--model-checks", str(pytester.path / "arts"), "-p", "no:cacheprovider", ".", plugins=[seen])
    assert any(k.endswith("test_own") for k in seen.items) and len(seen.items) > 1
    assert set(seen.items.values()) == {0}, seen.items
