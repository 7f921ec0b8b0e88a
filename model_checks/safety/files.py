"""Reading a file a pull request may have planted (a shard's report, a stored benchmark run): a regular file
only, never through a link, never blocking on a FIFO or a device, and never more than a cap."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from model_checks.core.errors import ModelChecksError


class UnsafeFile(ModelChecksError):
    what = "refused to read a file"


def read_regular(path: Path, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of `path`, which must be a regular file (not a link, FIFO, device or directory) of at most
    `max_bytes`; UnsafeFile naming the path and the reason otherwise. The file is opened without following a
    link and without blocking, and judged by what it is once open (fstat), so swapping it in between cannot help."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafeFile(f"{path}: the {what} is a symbolic link; it is read only as a regular file") from None
        raise UnsafeFile(f"{path}: cannot open the {what} ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = (
                "a FIFO"
                if stat.S_ISFIFO(st.st_mode)
                else "a device"
                if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a directory"
                if stat.S_ISDIR(st.st_mode)
                else "not a regular file"
            )
            raise UnsafeFile(f"{path}: the {what} is {kind}; only regular files are read")
        if st.st_size > max_bytes:
            raise UnsafeFile(f"{path}: the {what} is {st.st_size} bytes, over the cap of {max_bytes} bytes")
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:  # it grew while we read it
                raise UnsafeFile(f"{path}: the {what} grew past the cap of {max_bytes} bytes while it was read")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_regular_text(path: Path, max_bytes: int, what: str = "file") -> str:
    """`read_regular`, decoded as UTF-8 (UnsafeFile when it is not)."""
    data = read_regular(path, max_bytes, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UnsafeFile(f"{path}: the {what} is not UTF-8 text (byte {e.start})") from None
