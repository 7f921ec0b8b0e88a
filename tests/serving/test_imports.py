"""The serving extra is imported only when a serving test or command runs: not by importing the package,
not by the CLI's other commands, not by collecting artifacts that declare `serving:`. Pinned in subprocesses."""

import subprocess
import sys
import textwrap

from fixtures import artifacts as A

SERVING = ("starlette", "uvicorn", "httpx", "hdrh", "h11")


def test_importing_the_package_and_the_cli_imports_no_serving_dependency():
    code = textwrap.dedent(f"""
        import sys
        import model_checks, model_checks.plugin, model_checks.plugin.gate, model_checks.checks, model_checks.cli
        from model_checks.cli import main
        main(['schema'])
        print('SERVING', sorted({{m.split('.')[0] for m in sys.modules}} & set({SERVING!r})))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "SERVING []" in out


def test_collecting_serving_artifacts_imports_no_serving_dependency(pytester):
    A.onnx_artifact(pytester.path / "arts" / "a", name="a", serving={"rate_per_s": 10})
    pytester.makeconftest(textwrap.dedent(f"""
        import sys
        def pytest_collection_finish(session):
            print("SERVING_AT_COLLECTION", sorted({{m.split('.')[0] for m in sys.modules}} & set({SERVING!r})))
    """))
    r = pytester.runpytest_subprocess("--model-checks", "arts", "-p", "no:cacheprovider", "-s", "--collect-only", "-q")
    r.stdout.fnmatch_lines(["*::test_serving[[]a@1.0[]]", "SERVING_AT_COLLECTION [[][]]"])
