"""core/lazy.py: the module is imported at the first name read, and then reads as the module itself; numpy is
imported with one BLAS thread unless the user chose a number. In subprocesses: this process has numpy already."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fixtures import artifacts as A

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


# -- numpy with one BLAS thread (lazy.import_numpy) ---------------------------------------------------------------
# Counted from /proc: the process's threads after importing numpy as each way does, and the variable after it.
THREADS = """
import os, sys, threading
way = sys.argv[1]
if way == "beside a thread":
    stop = threading.Event()
    threading.Thread(target=stop.wait).start()
if way == "plain":
    import numpy
elif way == "lazy":
    from model_checks.core.lazy import lazy
    lazy("numpy").float32
elif way == "spare worker":
    from model_checks.isolation.worker import _Models
    _Models.warm(())
else:
    from model_checks.core.lazy import import_numpy
    import_numpy()
extra = 1 if way == "beside a thread" else 0
print(len(os.listdir("/proc/self/task")) - extra, os.environ.get("OPENBLAS_NUM_THREADS"))
if extra:
    stop.set()
"""


def _threads(way: str, **env: str) -> tuple[int, str]:
    from model_checks.core.lazy import BLAS_THREAD_VARIABLES

    clean = {k: v for k, v in os.environ.items() if k not in BLAS_THREAD_VARIABLES}
    r = subprocess.run(
        [sys.executable, "-c", THREADS, way], capture_output=True, text=True, check=True, env={**clean, **env}
    )
    count, value = r.stdout.split()
    return int(count), value


@pytest.fixture(scope="module")
def blas_threads() -> int:
    """The threads a plain `import numpy` leaves here: more than one where numpy's OpenBLAS starts a thread a core
    (the case import_numpy is for); else there is nothing for these tests to tell apart."""
    if not Path("/proc/self/task").is_dir():
        pytest.skip("counts threads from /proc (Linux)")
    plain, _ = _threads("plain")
    if plain < 2:
        pytest.skip(f"a plain numpy import starts no BLAS thread here ({os.cpu_count()} CPU(s), or not OpenBLAS)")
    return plain


@pytest.mark.parametrize("way", ["import_numpy", "lazy", "spare worker"])
def test_numpy_is_imported_with_one_blas_thread_and_the_environment_given_back(blas_threads, way):
    assert _threads(way) == (1, "None"), f"a plain import here: {blas_threads} threads"


def test_a_users_choice_of_blas_threads_stands(blas_threads):
    assert _threads("import_numpy", OPENBLAS_NUM_THREADS="2") == (2, "2")
    assert _threads("import_numpy", OMP_NUM_THREADS="2")[0] == 2


def test_with_another_thread_running_the_environment_is_not_touched(blas_threads):
    # setting it could race that thread's reads of the environment: numpy is imported as it is
    assert _threads("beside a thread") == (blas_threads, "None")


def test_a_gate_run_imports_numpy_with_one_blas_thread(pytester, monkeypatch, blas_threads):
    A.onnx_artifact(pytester.path / "arts" / "tiny")
    pytester.makeconftest(
        textwrap.dedent("""
        import os, sys
        def pytest_sessionfinish(session):
            print("PARENT", "numpy" in sys.modules, len(os.listdir("/proc/self/task")))
        """)
    )
    from model_checks.core.lazy import BLAS_THREAD_VARIABLES

    for v in BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(v, raising=False)
    r = pytester.runpytest_subprocess("--model-checks", "arts", "-p", "no:cacheprovider", "-s")
    assert r.ret == 0, r.stdout.str()
    r.stdout.fnmatch_lines(["*PARENT True 1*"])
