"""The producer modules and commands import no framework until a function that needs one runs."""

import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "tensorflow", "tf_keras", "keras", "onnxruntime", "tf2onnx", "onnxconverter_common", "onnxscript")
# Every producer module, found rather than listed, so a new one is covered the day it lands.
MODULES = tuple(sorted(p.stem for p in (Path(__file__).parents[2] / "model_checks" / "producers").glob("*.py") if p.stem != "__init__"))


def test_importing_producers_and_building_their_parsers_imports_no_framework():
    code = (
        "import sys, importlib\n"
        f"for m in {MODULES!r}: importlib.import_module('model_checks.producers.' + m)\n"
        "import model_checks.examples.build, model_checks.examples.table\n"
        "from model_checks.cli import build_parser\n"
        "for c in ('export', 'trace', 'quantize', 'fp16', 'optimize', 'convert-keras', 'package'): build_parser(c)\n"
        f"print('HEAVY', sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    assert "figures" in MODULES and "package" in MODULES
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
