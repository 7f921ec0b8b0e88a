"""A progress bar on long steps (calibration, conversion, measuring); silent when stderr is not a terminal."""

from __future__ import annotations

from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """`items` wrapped in a tqdm bar (tqdm decides to stay quiet off a terminal); plain when tqdm is missing."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        yield from items
        return
    yield from tqdm(items, desc=desc, total=total, disable=None, leave=False, unit="step")
