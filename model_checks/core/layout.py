"""Feeding one model's inputs to another made in a different framework: inputs matched by name (else by
order) and transposed between channel-first and channel-last, as declared (`layout`), detected from the
shapes, or by the framework's convention; outputs matched by name, else by order."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from model_checks.core.errors import ArtifactLoadError
from model_checks.manifest.model import TensorSpec

CHANNELS = (1, 2, 3, 4)  # a small dim next to larger spatial dims is taken for channels


def channels_first(layout: str) -> bool:
    return layout.upper().startswith("NC")


def detect(shape: Sequence[int | str] | None) -> str | None:
    """`NCHW` or `NHWC` for a rank-4 shape whose channel dim stands out, else None."""
    if shape is None or len(shape) != 4:
        return None
    c1, c3 = shape[1], shape[3]
    small1 = isinstance(c1, int) and c1 in CHANNELS
    small3 = isinstance(c3, int) and c3 in CHANNELS
    if small1 and not small3 and (not isinstance(c3, int) or c3 > max(CHANNELS)):
        return "NCHW"
    if small3 and not small1 and (not isinstance(c1, int) or c1 > max(CHANNELS)):
        return "NHWC"
    return None


def layout_of(spec: TensorSpec, fmt: str) -> str | None:
    """Declared, else detected from the shape, else the format's convention (rank 4 only)."""
    if spec.layout:
        return spec.layout
    found = detect(spec.shape)
    if found or (spec.shape is not None and len(spec.shape) != 4):
        return found
    from model_checks.backends.registry import layout_convention  # the framework's, when nothing else tells

    return layout_convention(fmt)


def to_last(a: np.ndarray) -> np.ndarray:
    return np.transpose(a, (0, *range(2, a.ndim), 1))


def to_first(a: np.ndarray) -> np.ndarray:
    return np.transpose(a, (0, a.ndim - 1, *range(1, a.ndim - 1)))


def _fits(shape: tuple[int, ...], spec: TensorSpec) -> bool:
    if spec.shape is None:
        return True
    return len(shape) == len(spec.shape) and all(
        not isinstance(d, int) or d <= 0 or d == s for s, d in zip(shape, spec.shape)
    )


def convert(a: np.ndarray, src: str | None, dst: TensorSpec, dst_fmt: str) -> np.ndarray:
    """`a` (laid out as `src`) in the layout `dst` expects."""
    if a.ndim < 3:
        return a
    want = layout_of(dst, dst_fmt)
    if src and want and channels_first(src) != channels_first(want):
        return to_last(a) if channels_first(src) else to_first(a)
    if src and want or _fits(a.shape, dst):
        return a
    for moved in (to_last(a), to_first(a)):
        if _fits(moved.shape, dst):
            return moved
    return a


def pair(src: Sequence[str], dst: Sequence[str], what: str) -> list[tuple[str, str]]:
    """(src name, dst name): by name when every name matches, else by order when the counts agree."""
    if set(src) == set(dst):
        return [(n, n) for n in src]
    if len(src) != len(dst):
        raise ArtifactLoadError(
            f"{what}: names differ ({', '.join(src)} against {', '.join(dst)}) and so do their counts, so they cannot be matched by order either"
        )
    return list(zip(src, dst))


def feeds_for(
    feeds: Mapping[str, np.ndarray],
    src_specs: Sequence[TensorSpec],
    src_fmt: str,
    dst_specs: Sequence[TensorSpec],
    dst_fmt: str,
) -> dict[str, np.ndarray]:
    """The artifact's feeds as the reference model wants them."""
    by_name = {s.name: s for s in src_specs}
    out = {}
    for s, d in pair(list(feeds), [t.name for t in dst_specs], "inputs of the model and its reference"):
        spec = by_name.get(s, TensorSpec(name=s))
        dst = next(t for t in dst_specs if t.name == d)
        arr = np.asarray(feeds[s])
        out[d] = convert(
            arr,
            layout_of(TensorSpec(s, shape=arr.shape, layout=spec.layout), src_fmt) if arr.ndim == 4 else None,
            dst,
            dst_fmt,
        )
        if dst.dtype and dst.dtype != "bfloat16" and out[d].dtype != np.dtype(dst.dtype):
            out[d] = out[d].astype(dst.dtype)
    return out


def outputs_as(expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The reference's outputs under the artifact's names, transposed where only the layout differs."""
    out = {}
    for r, g in pair(list(expected), list(got), "outputs of the model and its reference"):
        a, want = np.asarray(expected[r]), np.asarray(got[g]).shape
        if a.shape != want and a.ndim >= 3:
            a = next((m for m in (to_last(a), to_first(a)) if m.shape == want), a)
        out[g] = a
    return out
