"""The serving extra is imported only when a serving test or command runs: not by collecting artifacts that declare
`serving:` (importing the package and the CLI: tests/test_lazy_imports.py). Pinned in a subprocess."""

import textwrap

from fixtures import artifacts as A

SERVING = ("starlette", "uvicorn", "httpx", "hdrh", "h11")


def test_collecting_serving_artifacts_imports_no_serving_dependency(pytester):
    A.onnx_artifact(pytester.path / "arts" / "a", name="a", serving={"rate_per_s": 10})
    pytester.makeconftest(
        textwrap.dedent(f"""
        import sys
        def pytest_collection_finish(session):
            print("SERVING_AT_COLLECTION", sorted({{m.split('.')[0] for m in sys.modules}} & set({SERVING!r})))
    """)
    )
    r = pytester.runpytest_subprocess("--model-checks", "arts", "-p", "no:cacheprovider", "-s", "--collect-only", "-q")
    r.stdout.fnmatch_lines(["*::test_serving[[]a@1.0[]]", "SERVING_AT_COLLECTION [[][]]"])
