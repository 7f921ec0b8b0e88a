"""summary.md of an interrupted run says so and lists what was not checked (issue 11)."""

from __future__ import annotations

import pytest

from fixtures import bad_artifacts
from fixtures.gate_run import run_gate


def test_an_interrupted_summary_says_so_and_lists_what_was_not_checked(pytester: pytest.Pytester) -> None:
    root = pytester.path / "artifacts"
    bad_artifacts.model(root / "first")
    bad_artifacts.model(root / "second")
    pytester.makeconftest("""
        import pytest
        def pytest_runtest_call(item):
            if "second" in item.nodeid:
                raise KeyboardInterrupt
    """)
    summary = pytester.path / "summary.md"
    run = run_gate(pytester, root, f"--model-checks-summary={summary}", interrupted=True)
    text = summary.read_text()
    assert run.ret == pytest.ExitCode.INTERRUPTED
    assert text.splitlines()[2].startswith("**INTERRUPTED: this run was stopped before it finished; ")
    assert "## Not checked (interrupted)" in text and "- `second@1.0`: " in text and "- `first@1.0`" not in text
    assert "Every collected check passed" not in text
