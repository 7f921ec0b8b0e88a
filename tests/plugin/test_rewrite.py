"""The gate's own modules are imported plainly, not assertion-rewritten (issue 24: pytest rewrites every module of a
plugin's distribution, and where no bytecode is written it does so again on every run); a user's tests keep
pytest's assertion rewriting."""

from __future__ import annotations

import json

import pytest

from fixtures import artifacts as A

RECORD = """
import json, pathlib

def pytest_unconfigure(config):
    names = sorted(config.pluginmanager.rewrite_hook._rewritten_names)
    pathlib.Path("rewritten.json").write_text(json.dumps(names))
"""


def test_the_gate_s_modules_are_imported_plainly_and_a_user_s_asserts_are_still_rewritten(
    pytester: pytest.Pytester,
) -> None:
    A.onnx_artifact(pytester.path / "arts" / "m", name="m")
    pytester.makeconftest(RECORD)
    pytester.makepyfile(test_user="def test_x():\n    a = 1\n    assert a == 2\n")
    r = pytester.runpytest_subprocess("--model-checks", "arts", "-p", "no:cacheprovider", "test_user.py")
    r.assert_outcomes(failed=1, passed=3, skipped=3)
    r.stdout.fnmatch_lines(["*assert 1 == 2*"])  # pytest's introspection of the user's assert
    rewritten = json.loads((pytester.path / "rewritten.json").read_text())
    assert "test_user" in rewritten and "conftest" in rewritten
    # only what runs before the plugin's first import (model_checks.plugin.plainly) may stay rewritten; whether
    # pytest marked the package at all depends on how it is installed (an editable install's files are not listed
    # in its distribution)
    before = {"model_checks", "model_checks.plugin", "model_checks.plugin.plainly"}
    assert not [n for n in rewritten if n.startswith("model_checks") and n not in before], rewritten


def test_the_private_import_hook_state_the_plugin_changes_is_still_there(pytester: pytest.Pytester) -> None:
    """`rewrite_hook._must_rewrite` (a set of marked names) and `_marked_for_rewrite_cache` (a dict), which
    model_checks.plugin.plainly edits: checked with pytest 9.2; on another version, re-run and widen."""
    from _pytest.assertion.rewrite import AssertionRewritingHook

    hook = AssertionRewritingHook(pytester.parseconfig())
    assert isinstance(hook._must_rewrite, set) and isinstance(hook._marked_for_rewrite_cache, dict)
    assert int(pytest.__version__.split(".")[0]) in (8, 9), pytest.__version__
