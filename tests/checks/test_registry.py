"""The check registry builds the gate's tests and the summary's columns (issue 21): a check is its module and a
line in CHECKS, nothing else; a listed module that declares nothing is a message, never a dropped check."""

import textwrap

import pytest

from fixtures import artifacts as A
from model_checks import checks
from model_checks.checks.registry import Check

REGISTRY = checks.registry()


@pytest.mark.parametrize("name", list(REGISTRY))
def test_each_declaration_is_named_as_listed_and_its_module_runs_it(name):
    check = REGISTRY[name]
    assert isinstance(check, Check) and check.name == name and callable(check.run)
    assert checks.module(name).__name__ == check.run.__module__
    assert check.blocking in ("failure", "model", "never")


def test_only_the_manifest_blocks_on_any_failure_and_accuracy_never_blocks():
    assert [n for n, c in REGISTRY.items() if c.blocking == "failure"] == [checks.FIRST]
    assert REGISTRY["accuracy"].blocking == "never"


def test_an_unknown_check_is_a_message_naming_the_known_ones():
    from model_checks.core.errors import ModelChecksError

    with pytest.raises(ModelChecksError, match=r"^no check named 'nope'; known: manifest, integrity, "):
        checks.get("nope")


TOY = """
    from model_checks.checks.registry import Check, Figure
    from model_checks.core.results import CheckResult


    def run(ctx):
        if ctx.artifact.id.startswith("bad"):
            return CheckResult.from_problems("toy", ctx.artifact.id, ["the toy says no", "and no again"], "", figures={"toy_score": 0.25})
        return CheckResult("toy", True, "toy: fine", figures={"toy_score": 1.0})


    CHECK = Check("toy", run, markers=(("toy", "the toy check"),), blocking="never", figures=(Figure("toy score", "toy_score", ".2f"),))
"""


def _toy_project(pytester, name: str, module: str) -> None:
    pytester.makepyfile(**{name: textwrap.dedent(module)})
    pytester.syspathinsert()
    pytester.makeconftest(f"""
        import model_checks.checks as checks
        checks.CHECKS = (*checks.CHECKS, "{name}")
    """)
    A.onnx_artifact(pytester.path / "arts" / "good", name="good")
    A.onnx_artifact(pytester.path / "arts" / "bad", name="bad")


def test_a_toy_check_added_through_the_registry_alone_is_collected_marked_run_and_summarised(pytester, monkeypatch):
    monkeypatch.setattr(checks, "CHECKS", checks.CHECKS)  # the conftest's change is undone after the test
    _toy_project(pytester, "toycheck", TOY)
    r = pytester.runpytest(
        "--model-checks",
        "arts",
        "-p",
        "no:cacheprovider",
        "--model-checks-isolate",
        "off",
        "-m",
        "toy",
        "--model-checks-summary",
        "summary.md",
        "-v",
    )
    r.assert_outcomes(passed=1, failed=1)
    r.stdout.fnmatch_lines(
        [
            "*arts/bad/metadata.yaml::test_toy[[]bad@1.0[]] FAILED*",
            "*arts/good/metadata.yaml::test_toy[[]good@1.0[]] PASSED*",
            "*toy: bad@1.0: 2 problems*",
            "*  - the toy says no*",
        ]
    )
    text = (pytester.path / "summary.md").read_text()
    head = next(line for line in text.splitlines() if line.startswith("| artifact"))
    assert head.endswith("| toy score | toy |"), head
    assert "| `bad@1.0` | onnx | - | - | - | - | - | - | 0.25 | fail: the toy says no (+1 more) |" in text, text
    assert "| `good@1.0` | onnx | - | - | - | - | - | - | 1.00 | pass |" in text, text


def test_a_listed_module_without_a_declaration_is_a_usage_error_naming_what_to_add(pytester, monkeypatch):
    monkeypatch.setattr(checks, "CHECKS", checks.CHECKS)
    _toy_project(pytester, "undeclared", "def run(ctx):\n    pass\n")
    r = pytester.runpytest("--model-checks", "arts", "-p", "no:cacheprovider")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines(
        [
            "ERROR: model-checks: undeclared is listed in model_checks.checks.CHECKS but declares no check: end the module "
            "with `CHECK = Check(NAME, run, ...)` (model_checks/checks/registry.py)"
        ]
    )


def test_a_declaration_with_an_unknown_blocking_is_a_message_naming_the_values(monkeypatch, tmp_path):
    from model_checks.core.errors import ModelChecksError

    (tmp_path / "badblocking.py").write_text(
        "from model_checks.checks.registry import Check\nCHECK = Check('bad', print, blocking='sometimes')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        ModelChecksError,
        match=r"^badblocking: check 'bad': blocking is 'sometimes'; it must be 'failure', "
        r"'model' or 'never'$",
    ):
        checks.declaration("badblocking")
