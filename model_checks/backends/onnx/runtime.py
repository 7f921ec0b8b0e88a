"""onnxruntime, imported so that it writes nothing under the user's home: on import it creates a device id and a
database under $XDG_CACHE_HOME (else ~/.cache)/Microsoft/DeveloperTools. In a worker that home is the sandbox's;
in the processes that keep the user's (pytest with --model-checks-isolate off, budgets timed in process, the
service, the CLI) the import points the cache at a temporary directory, removed once the import is done."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

_CACHE = "XDG_CACHE_HOME"


def onnxruntime() -> Any:
    """The onnxruntime module (imported on first use, with its cache directory a private, temporary one)."""
    if "onnxruntime" in sys.modules:
        return sys.modules["onnxruntime"]
    private = tempfile.mkdtemp(prefix="model-checks-ort-")
    saved = os.environ.get(_CACHE)
    os.environ[_CACHE] = private
    try:
        import onnxruntime as ort
    finally:
        if saved is None:
            os.environ.pop(_CACHE, None)
        else:
            os.environ[_CACHE] = saved
        shutil.rmtree(private, ignore_errors=True)
    return ort
