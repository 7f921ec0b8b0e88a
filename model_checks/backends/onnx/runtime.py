"""onnxruntime, imported so that it writes nothing under the user's home: on import it creates a device id and a
database under $XDG_CACHE_HOME (else ~/.cache)/Microsoft/DeveloperTools. In a worker that home is the sandbox's;
in the processes that keep the user's (pytest with --model-checks-isolate off, budgets timed in process, the
service, the CLI) the import points the cache at a temporary directory, removed once the import is done."""

from __future__ import annotations

import shutil
import sys
import tempfile
from typing import Any

from model_checks.core.environment import environment


def onnxruntime() -> Any:
    """The onnxruntime module (imported on first use, with its cache directory a private, temporary one)."""
    if "onnxruntime" in sys.modules:
        return sys.modules["onnxruntime"]
    private = tempfile.mkdtemp(prefix="model-checks-ort-")
    try:
        with environment(XDG_CACHE_HOME=private):
            import onnxruntime as ort
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return ort
