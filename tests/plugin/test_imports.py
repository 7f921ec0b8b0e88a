"""Importing the package, loading the plugin and collecting ONNX artifacts import no ML framework, and
onnxruntime not until a check runs. Pinned in subprocesses: an in-process run would see this run's modules."""

import subprocess
import sys
import textwrap

from fixtures import artifacts as A

HEAVY = ("torch", "tensorflow", "tf_keras", "keras", "onnxruntime", "tf2onnx", "tensorflow_model_optimization", "ray", "junitparser",
         "openvino", "ai_edge_litert")


def test_importing_the_package_imports_no_framework():
    code = textwrap.dedent(f"""
        import sys
        import model_checks, model_checks.plugin, model_checks.core.session, model_checks.plugin.gate, model_checks.cli
        import model_checks.checks, model_checks.core.discovery, model_checks.core.metrics, model_checks.plugin.summary
        print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_schema_imports_no_framework():
    code = "import sys; from model_checks.cli import main; main(['schema']); print('HEAVY', sorted({m.split('.')[0] for m in sys.modules} & set(%r)))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_collection_loads_no_model_and_imports_no_framework(pytester):
    for i in range(3):
        A.pair(pytester.path / "arts" / f"p{i}")
    pytester.makeconftest(textwrap.dedent(f"""
        import sys
        def pytest_collection_finish(session):
            heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))
            print("HEAVY_AT_COLLECTION", heavy)
        def pytest_sessionfinish(session):
            heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))
            print("HEAVY_AT_END", heavy)
    """))
    r = pytester.runpytest_subprocess("--model-checks", "arts", "-p", "no:cacheprovider", "-s")
    r.assert_outcomes(passed=21, skipped=15)
    r.stdout.fnmatch_lines(["*HEAVY_AT_COLLECTION []*"])
    end = next(line for line in r.stdout.lines if "HEAVY_AT_END" in line)
    assert "torch" not in end and "tensorflow" not in end and "openvino" not in end, end  # onnxruntime only (here or in the worker)
