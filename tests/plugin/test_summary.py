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


def test_a_summary_that_cannot_be_written_is_said_and_the_verdicts_stand(pytester: pytest.Pytester) -> None:
    """Its folder cannot be made (here a file stands in its place; elsewhere a read-only or full disk): one red line
    at the end, as for the nightly report, not a traceback after the results."""
    from fixtures import artifacts as A

    A.onnx_artifact(pytester.path / "arts" / "m", name="m")
    (pytester.path / "blocker").write_text("a file, not a folder")
    r = pytester.runpytest_inprocess(
        "--model-checks",
        "arts",
        "-p",
        "no:cacheprovider",
        "-k",
        "manifest",
        "--model-checks-summary=blocker/summary.md",
    )
    assert r.ret == 0, r.stdout.str()
    r.assert_outcomes(passed=1)
    r.stdout.fnmatch_lines(["model-checks: the summary could not be written to *blocker/summary.md: *"])
    assert "Traceback" not in r.stdout.str() + r.stderr.str()
