"""The sha256 a manifest declares: over a model file and, in order, its external data files."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable


def sha256_of(paths: Iterable[Path]) -> str:
    """Hex sha256 of the files' bytes, concatenated in order, read in 1 MiB chunks."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
