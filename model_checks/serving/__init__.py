"""Serving: an Open Inference Protocol (KServe v2 REST) service for any artifact, an open-loop load
generator, and the `serving` check that runs both. Needs `pip install 'model-checks[serving]'`; nothing
here is imported until a serving test or command runs."""

from __future__ import annotations

from model_checks.core.errors import MissingDependencyError


def require(module: str) -> None:
    """Import `module` of the serving extra, or say what to install."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(f"serving needs {module}: pip install 'model-checks[serving]'") from None
