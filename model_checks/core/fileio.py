"""Every file the package writes goes through here: written to a temporary sibling, flushed to disk and
renamed over the target, so an interrupted run leaves the old file whole and never half a new one. The file
gets the permissions a plain open() would give (mkstemp's are owner-only, which CI artifact uploads trip on)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Atomically replace `path` with `data`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Atomically replace `path` with `text` in UTF-8 (encoded first: text that cannot be encoded leaves the old file)."""
    return write_bytes(path, text.encode("utf-8"))
