"""Every entry point imports no framework and no optional extra until something that needs one runs: the package,
its public API, the pytest plugin, each CLI command's parser, `model-checks schema`, every producer module and the
examples' builders. One subprocess each: an in-process check would see this run's modules."""

import subprocess
import sys
from pathlib import Path

import pytest

from model_checks.cli import COMMANDS

# frameworks and every optional extra's packages (core/requires.EXTRAS, the frameworks' from their declarations)
HEAVY = (
    "torch",
    "tensorflow",
    "tf_keras",
    "keras",
    "onnxruntime",
    "tf2onnx",
    "onnxconverter_common",
    "onnxscript",
    "tensorflow_model_optimization",
    "openvino",
    "ai_edge_litert",
    "onnx2torch",
    "ray",
    "junitparser",
    "matplotlib",
    "starlette",
    "uvicorn",
    "httpx",
    "hdrh",
    "sklearn",
    "skl2onnx",
    "hypothesis",
)
PACKAGE = Path(__file__).resolve().parents[1] / "model_checks"
PRODUCERS = sorted(p.stem for p in (PACKAGE / "producers").glob("*.py") if p.stem != "__init__")

ENTRY_POINTS = {
    "import model_checks": "import model_checks",
    "the public API": "import model_checks\nfor n in model_checks.__all__: getattr(model_checks, n)",
    "the pytest plugin": "import model_checks.plugin, model_checks.plugin.gate, model_checks.plugin.summary, model_checks.core.session",
    "python -m model_checks": "import runpy, sys\nsys.argv = ['model-checks', '--version']\ntry: runpy.run_module('model_checks', run_name='__main__')\nexcept SystemExit: pass",
    "model-checks schema": "from model_checks.cli import main\nmain(['schema'])",
    "the producers": "import importlib\nfor m in %r: importlib.import_module('model_checks.producers.' + m)"
    % (PRODUCERS,),
    "the examples' builders": "import model_checks.examples.build, model_checks.examples.table",
    **{
        f"model-checks {c} (its parser)": f"from model_checks.cli import build_parser\nbuild_parser({c!r})"
        for c in COMMANDS
    },
}


@pytest.mark.parametrize("code", list(ENTRY_POINTS.values()), ids=list(ENTRY_POINTS))
def test_an_entry_point_imports_no_framework_and_no_extra(code):
    probe = f"\nimport sys\nprint('HEAVY', sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    out = subprocess.run([sys.executable, "-c", code + probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY []", out


def test_import_model_checks_imports_not_even_numpy():
    out = subprocess.run(
        [sys.executable, "-c", "import sys, model_checks; print('numpy' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "False"
