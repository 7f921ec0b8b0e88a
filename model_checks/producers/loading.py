"""Loading what a producer command's options name (a callable, an array); their argument types live with every
other in `core/argtypes.py`. Nothing heavy is imported here."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any


def load_object(ref: str, option: str) -> Any:
    """Import `module:attribute`; an error names the option that gave it."""
    from model_checks.producers.verify import ProducerError

    module, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise ProducerError(f"{option}: cannot import {module} ({e})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ProducerError(f"{option}: {module} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def load_array(path: Path, option: str) -> Any:
    """The array of an .npz for a single-input model (named x, input, inputs or samples, else its only one)."""
    from model_checks.core.inputs import load_npz
    from model_checks.producers.calibration import pick_array

    return pick_array(load_npz(path, option), None, f"{option}: {path.name}")
