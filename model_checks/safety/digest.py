"""The sha256 a manifest declares: over a model file and, in order, its external data files."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Iterable

# A file changed less than this before its hash started is not remembered: its change time may be rounded down
# by a coarse clock (a jiffy, up to 10 ms), so a second change in the same tick could leave its stat unchanged.
SETTLED_NS = 100_000_000


def sha256_of(paths: Iterable[Path]) -> str:
    """Hex sha256 of the files' bytes, concatenated in order, read in 1 MiB chunks."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _identity(paths: list[Path]) -> tuple | None:
    """What changes when any of the files does: device, inode, size, modification and change times."""
    try:
        return tuple(
            (str(p), s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns) for p in paths for s in [os.stat(p)]
        )
    except OSError:
        return None


class Digests:
    """sha256 of files hashed ahead (a model's files while its worker loads it), given back only while the files
    are unchanged: same device, inode, size, modification and change time as when their hash started (a change
    time is set by the kernel, not by a writer), and settled then (see SETTLED_NS). Anything else is hashed again."""

    def __init__(self) -> None:
        self._known: dict[tuple, str] = {}

    def hash(self, paths: list[Path]) -> str:
        """The files' sha256, remembered under their identity as it was before reading, when they were settled then:
        a change from then on, while they are read included, moves a change time past the one remembered."""
        started = time.time_ns()
        before = _identity(paths)
        digest = sha256_of(paths)
        if before is not None and all(max(mtime, ctime) < started - SETTLED_NS for *_, mtime, ctime in before):
            self._known[before] = digest
        return digest

    def known(self, paths: list[Path]) -> str | None:
        """The sha256 `hash` remembered for these files, if they are still as they were; else None."""
        identity = _identity(paths)
        return self._known.get(identity) if identity is not None else None
