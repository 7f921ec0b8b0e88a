"""A progress bar on long steps (calibration, conversion, measuring); silent when stderr is not a terminal."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """`items` wrapped in a tqdm bar (tqdm decides to stay quiet off a terminal); plain when tqdm is missing."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        yield from items
        return
    yield from tqdm(items, desc=desc, total=total, disable=None, leave=False, unit="step")


@contextmanager
def stages(desc: str, total: int) -> Iterator[Callable[[str], None]]:
    """A bar over the `total` stages of one conversion: call the yielded function as each stage finishes."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        yield lambda _label: None
        return
    with tqdm(total=total, desc=desc, disable=None, leave=False, unit="stage") as bar:

        def done(label: str) -> None:
            bar.set_postfix_str(label)
            bar.update(1)

        yield done
