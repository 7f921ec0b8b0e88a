"""Which dimension is the batch, and where it sits in each input and output.

The batch is a named dimension, not axis 0: a recurrent model's `state: [2, batch, 128]` carries it at axis 1,
and a time-major model's `x: [sequence, batch, 16]` leads with something else. The rule (README, "Which
dimension is the batch"):

1. a dimension whose name says batch: it contains `batch` (any case: `batch`, `batch_size`, `unk__batch`),
   or is exactly `N`, `B`, `n`, `b` or `bs`;
2. otherwise, the first dynamic leading dimension of the inputs (an unnamed `?` included), unless its name
   says it is something else (a sequence, a time step, a length, a height or width: `NOT_BATCH`);
3. otherwise there is no batch: nothing is split, joined or sized as one.

Inputs and outputs that do not carry the batch's name are left whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from model_checks.core.lazy import lazy
from model_checks.manifest.model import TensorSpec

np = lazy("numpy")

BATCH_NAMES = frozenset({"n", "b", "bs"})
NOT_BATCH = re.compile(r"seq|len|time|step|frame|token|height|width|^[thwcl]$|^(?:num_)?channels?$", re.IGNORECASE)


def is_batch_name(name: str) -> bool:
    return "batch" in name.lower() or name.lower() in BATCH_NAMES


@dataclass(frozen=True)
class Batch:
    """The batch dimension: its name (`?` for an unnamed leading one) and why it was taken for the batch."""

    name: str
    why: str

    def axis(self, spec: TensorSpec | None) -> int | None:
        """Where the batch sits in `spec`'s shape; None where it does not carry it (that tensor is left whole)."""
        if spec is None or not spec.shape:
            return None
        if self.name == "?":  # an unnamed batch is only ever a leading one
            return 0 if spec.shape[0] == "?" else None
        shape = list(spec.shape)
        return shape.index(self.name) if self.name in shape else None

    def describe(self) -> str:
        return f"the batch is '{self.name}' ({self.why})"


def find(specs: Iterable[TensorSpec]) -> Batch | None:
    """The batch among the inputs' dims, by the rule in the module's docstring; None when there is none."""
    specs = list(specs)
    for s in specs:
        for d in s.shape or ():
            if isinstance(d, str) and d != "?" and is_batch_name(d):
                return Batch(d, "named so")
    for s in specs:
        if s.shape and isinstance(s.shape[0], str) and not NOT_BATCH.search(s.shape[0]):
            return Batch(s.shape[0], f"the first dynamic leading dim, of input '{s.name}': no dim is named batch")
    return None


def axes(specs: Iterable[TensorSpec], batch: Batch | None) -> dict[str, int]:
    """Input or output name -> the axis that carries the batch, for those that carry it."""
    if batch is None:
        return {}
    return {s.name: k for s in specs if (k := batch.axis(s)) is not None}


def size(arrays: Mapping[str, np.ndarray], where: Mapping[str, int]) -> int | None:
    """The batch size the arrays agree on along their batch axes; None when they do not, when one has too few
    dims to hold it there, or when none carries it."""
    held = [(arrays[n], k) for n, k in where.items() if n in arrays]
    if not held or any(a.ndim <= k for a, k in held):
        return None
    sizes = {a.shape[k] for a, k in held}
    return sizes.pop() if len(sizes) == 1 else None


def take(
    arrays: Mapping[str, np.ndarray], where: Mapping[str, int], index: slice | np.ndarray
) -> dict[str, np.ndarray]:
    """The arrays cut to `index` along their batch axis; the others as they are."""
    out = {}
    for n, a in arrays.items():
        k = where.get(n)
        if k is None:
            out[n] = a
        else:
            idx = np.arange(a.shape[k])[index] if isinstance(index, slice) else index
            out[n] = np.take(a, idx, axis=k)
    return out


def repeat(arrays: Mapping[str, np.ndarray], where: Mapping[str, int], n: int) -> dict[str, np.ndarray]:
    """The arrays tiled along their batch axis to `n` rows (a single sample repeated); the others as they are."""
    return take(arrays, where, np.arange(n) % max(1, size(arrays, where) or 1))


def rows(arrays: Mapping[str, np.ndarray], where: Mapping[str, int], limit: int) -> list[dict[str, np.ndarray]]:
    """Single-sample feeds, one per row of the batch (up to `limit`); the arrays as one feed when they share none."""
    n = size(arrays, where)
    if not where or n is None:
        return [dict(arrays)]
    return [take(arrays, where, slice(i, i + 1)) for i in range(min(n, limit))]
