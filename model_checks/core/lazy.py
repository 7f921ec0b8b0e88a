"""`np = lazy("numpy")` at a module's top: the module named is imported at the first attribute read, not with the
module that names it. Collecting (and `--collect-only`) imports every check module to read its declaration and so
the engine under them; none of that needs numpy (~0.1 s of CPU a run) until a check runs. A required dependency
only: an optional one goes through `core/requires.require`, which names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType


class _Lazy(ModuleType):
    """Stands for module `__name__`; the first read of a name it lacks imports the module and takes a copy of its
    names, so later reads cost what a module's do (a name the module makes only on demand is asked of it each time)."""

    def __getattr__(self, attr: str):
        module = importlib.import_module(self.__name__)
        self.__dict__.update(vars(module))
        return getattr(module, attr)


def lazy(name: str) -> ModuleType:
    """Module `name`, imported when a name of it is first read (`np.float32`), never at this call."""
    return _Lazy(name)
