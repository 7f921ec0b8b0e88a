"""A run of the gate's own items leaves the cyclic collector's passes out of the interpreter's exit (issue 24: they
were 50-100 ms of a gate run), and only there: nothing runs frozen, not the session, not a caller of pytest.main
that goes on, and a run with a team's own tests in it keeps the exit CPython gives it."""

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


def test_a_gate_only_run_freezes_at_exit_and_not_before(pytester: pytest.Pytester, registered: list) -> None:
    A.onnx_artifact(pytester.path / "arts" / "m")
    frozen = gc.get_freeze_count()
    run = run_gate(pytester, pytester.path / "arts")
    assert run.ret == 0
    assert registered == [gc.freeze]
    assert gc.get_freeze_count() == frozen  # the session ran with the collector as it was, and the caller goes on so
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
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "arts")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("EXIT ")), out.stdout + out.stderr)
    assert line == "EXIT 0 0 True", line
