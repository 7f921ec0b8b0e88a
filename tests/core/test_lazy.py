"""core/lazy.py: the module is imported at the first name read, and then reads as the module itself. In a subprocess:
this process has numpy already."""

import subprocess
import sys

SCRIPT = """
import sys
from model_checks.core.lazy import lazy
np = lazy("numpy")
print("before", "numpy" in sys.modules)
print("value", np.float32(1.5) + np.float32(1) == 2.5)
import numpy
print("same", np.float32 is numpy.float32 and np.ndarray is numpy.ndarray and np.linalg is numpy.linalg)
try:
    np.no_such_name
except AttributeError as e:
    print("missing", e)
"""


def test_lazy_imports_at_first_read_and_reads_as_the_module():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "before False",
        "value True",
        "same True",
        "missing module 'numpy' has no attribute 'no_such_name'",
    ]
