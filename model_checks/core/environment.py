"""Environment variables set for a while and put back as they were: libraries that read one once (at import, at
their load) are given a value of the gate's without the rest of the process, or the processes it starts, keeping it."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator


def replace(values: dict[str, str]) -> dict[str, str | None]:
    """Set `values` in the environment; returns what they replaced (None: unset), for `restore`."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    return saved


def restore(saved: dict[str, str | None]) -> None:
    """Put each variable back as it was before `replace`: its value, or unset."""
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """`values` set for the block, then put back as they were."""
    saved = replace(values)
    try:
        yield
    finally:
        restore(saved)
