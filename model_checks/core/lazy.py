"""`np = lazy("numpy")` at a module's top: the module named is imported at the first attribute read, not with the
module that names it. Collecting (and `--collect-only`) imports every check module to read its declaration and so
the engine under them; none of that needs numpy (~0.1 s of CPU a run) until a check runs. A required dependency
only: an optional one goes through `core/requires.require`, which names the extra to install."""

from __future__ import annotations

import importlib
import os
import sys
import threading
from types import ModuleType

from model_checks.core.environment import environment

# The variables by which a user chooses OpenBLAS's threads (in the order OpenBLAS reads them): one set is theirs.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


class _Lazy(ModuleType):
    """Stands for module `__name__`; the first read of a name it lacks imports the module and takes a copy of its
    names, so later reads cost what a module's do (a name the module makes only on demand is asked of it each time)."""

    def __getattr__(self, attr: str):
        module = import_numpy() if self.__name__ == "numpy" else importlib.import_module(self.__name__)
        self.__dict__.update(vars(module))
        return getattr(module, attr)


def lazy(name: str) -> ModuleType:
    """Module `name`, imported when a name of it is first read (`np.float32`), never at this call."""
    return _Lazy(name)


def import_numpy() -> ModuleType:
    """numpy, imported with its BLAS on one thread unless the user chose a number (BLAS_THREAD_VARIABLES).

    numpy's OpenBLAS starts a thread per core when numpy is imported, and each waits for work spinning for about a
    tenth of a second: beside one other busy process on a 2-core machine (the parent's worker loading a model, the
    parent itself while its spare worker starts) the import then takes twice its ~45 ms, and the spinning thread
    takes CPU from whatever runs next (bench/overhead.py row a, base install: 0.79 -> 0.73 s). The gate's processes
    never use numpy's BLAS (metrics.py sums squares rather than calling a dot; models run in their own runtimes),
    and a sum split across a machine's cores would make a figure depend on how many it has. OpenBLAS reads the
    variable once, at its load: it is set only for the import, so neither the runtimes imported later nor a process
    started later see it. With other threads running, setting the environment could race their reads of it: numpy
    is then imported as it is."""
    if "numpy" in sys.modules or any(v in os.environ for v in BLAS_THREAD_VARIABLES) or threading.active_count() > 1:
        return importlib.import_module("numpy")
    with environment(OPENBLAS_NUM_THREADS="1"):
        return importlib.import_module("numpy")
