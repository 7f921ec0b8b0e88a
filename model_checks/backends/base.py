"""The runner every backend implements: `infer` validates the feeds, then calls `infer_impl`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from model_checks.manifest.model import TensorSpec


class Runner:
    """A loaded model. Subclasses fill `inputs`/`outputs` from the model itself and implement `infer_impl`."""

    format: str = "?"
    path: Path
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on `feeds` (input name -> array); outputs by name, in the model's order."""
        __tracebackhide__ = True
        want = [t.name for t in self.inputs]
        missing = [n for n in want if n not in feeds]
        extra = [n for n in feeds if n not in want]
        if missing or extra:
            raise ValueError(f"{self.path.name}: feeds do not match the model's inputs {want}: missing {missing}, unexpected {extra}")
        return self.infer_impl({n: np.asarray(feeds[n]) for n in want})

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the model; the runner is unusable afterwards."""


@dataclass(frozen=True)
class ModelFacts:
    """What a model is, read off the model itself, the same fields for every format.

    `optimization_leftovers` maps an optimization name to (what would remain, the offending nodes):
    where the model can show an optimization was applied, these nodes must be absent.
    """

    format: str
    precision: str
    precision_why: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    ops: Counter
    size_bytes: int
    opset: int | None = None
    opsets: dict[str, int] = field(default_factory=dict)
    optimization_leftovers: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
