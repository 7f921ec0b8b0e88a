"""Collecting ONNX artifacts loads no model and imports no ML framework, and onnxruntime not until a check runs
(importing the package and the plugin: tests/test_lazy_imports.py). Pinned in a subprocess."""

import textwrap

from fixtures import artifacts as A

HEAVY = (
    "torch",
    "tensorflow",
    "tf_keras",
    "keras",
    "onnxruntime",
    "tf2onnx",
    "tensorflow_model_optimization",
    "ray",
    "junitparser",
    "openvino",
    "ai_edge_litert",
)


def test_collection_loads_no_model_and_imports_no_framework(pytester):
    for i in range(3):
        A.pair(pytester.path / "arts" / f"p{i}")
    pytester.makeconftest(
        textwrap.dedent(f"""
        import sys
        def pytest_collection_finish(session):
            heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))
            print("HEAVY_AT_COLLECTION", heavy)
        def pytest_sessionfinish(session):
            heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))
            print("HEAVY_AT_END", heavy)
    """)
    )
    r = pytester.runpytest_subprocess("--model-checks", "arts", "-p", "no:cacheprovider", "-s")
    r.assert_outcomes(passed=21, skipped=15)
    r.stdout.fnmatch_lines(["*HEAVY_AT_COLLECTION []*"])
    end = next(line for line in r.stdout.lines if "HEAVY_AT_END" in line)
    assert "torch" not in end and "tensorflow" not in end and "openvino" not in end, (
        end
    )  # onnxruntime only (here or in the worker)


# What collecting never needs: numpy (a check's arrays), the serving check's load generator (asyncio) and protocol,
# packaging (the metadata check's version specifiers), the budgets' measuring machinery (budgets/check.py and the
# policies, baselines and protocol it imports: budgets/declare.py declares them). The checks' registry imports every
# check module at configure to read its declaration; those modules name these lazily (core/lazy.py, imports inside
# the functions that run).
NOT_FOR_COLLECTING = (
    "numpy",
    "asyncio",
    "model_checks.serving.load",
    "model_checks.serving.protocol",
    "packaging",
    "model_checks.checks.budgets.check",
    "model_checks.checks.budgets.policy",
    "model_checks.checks.budgets.measure",
    "model_checks.checks.budgets.baseline",
)


def test_collect_only_imports_no_numpy_asyncio_or_serving_code(pytester):
    for i in range(2):
        A.pair(pytester.path / "arts" / f"p{i}")
    pytester.makeconftest(
        textwrap.dedent(f"""
        import sys
        def pytest_collection_finish(session):
            print("LOADED_AT_COLLECTION", sorted(m for m in {NOT_FOR_COLLECTING!r} if m in sys.modules))
    """)
    )
    # anyio's pytest plugin imports asyncio itself, gate or not
    r = pytester.runpytest_subprocess(
        "--model-checks", "arts", "-p", "no:cacheprovider", "-p", "no:anyio", "-s", "--collect-only"
    )
    assert r.ret == 0, r.stdout.str()
    r.stdout.fnmatch_lines(["*LOADED_AT_COLLECTION []*", "*tests collected*"])
