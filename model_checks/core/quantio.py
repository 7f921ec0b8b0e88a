"""Quantized inputs and outputs: a full-integer model takes int8 (or uint8) tensors and returns them. The gate
feeds real values quantized with each input's own scale and zero point, dequantizes each output with its own,
and compares in float against the reference: comparing the stored integers, or feeding floats cast to int8,
is the mistake that makes a correct model look broken (or a broken one look fine)."""

from __future__ import annotations

from typing import Mapping, Sequence

from model_checks.core.lazy import lazy
from model_checks.manifest.model import QuantParams, TensorSpec

np = lazy("numpy")

SATURATION_SHARE = 0.01  # more than this share of values clipped: the parameters do not cover the values


def bounds(q: QuantParams) -> tuple[int, int]:
    info = np.iinfo(np.dtype(q.dtype))
    return int(info.min), int(info.max)


def quantize(a: np.ndarray, q: QuantParams) -> np.ndarray:
    """Real values stored as `q.dtype`: round(a / scale) + zero_point, clipped to the type's range."""
    lo, hi = bounds(q)
    stored = np.round(np.asarray(a, np.float64) / q.scale) + q.zero_point
    return np.clip(stored, lo, hi).astype(q.dtype)


def dequantize(a: np.ndarray, q: QuantParams) -> np.ndarray:
    """Stored integers as the real values they stand for, in float32."""
    return ((np.asarray(a, np.float64) - q.zero_point) * q.scale).astype(np.float32)


def representable(q: QuantParams) -> tuple[float, float]:
    """The real values a tensor quantized with `q` can hold."""
    lo, hi = bounds(q)
    return (lo - q.zero_point) * q.scale, (hi - q.zero_point) * q.scale


def clipped_share(a: np.ndarray, q: QuantParams) -> float:
    """The share of `a`'s real values outside what `q` represents (half a step of slack at each end)."""
    lo, hi = representable(q)
    a = np.asarray(a, np.float64)
    if not a.size:
        return 0.0
    return float(np.mean((a < lo - q.scale / 2) | (a > hi + q.scale / 2)))


def quantized(specs: Sequence[TensorSpec]) -> list[TensorSpec]:
    return [s for s in specs if s.quantization is not None]


def io_note(inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]) -> str | None:
    """What the runner did with quantized inputs and outputs, for the case line; None when there are none."""
    ins, outs = quantized(inputs), quantized(outputs)
    if not ins and not outs:
        return None
    parts = [f"input '{s.name}' quantized ({s.quantization})" for s in ins]
    parts += [f"output '{s.name}' dequantized ({s.quantization})" for s in outs]
    return "quantized I/O: " + "; ".join(parts) + "; compared in float"


def saturation_lines(
    feeds: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray] | None,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
) -> list[str]:
    """The quantized tensors whose parameters do not cover the values they carry: the inputs fed, and the values
    the reference gives for each output. A wrong scale or zero point shows here, under the tensor's name."""
    lines = []
    for s in quantized(inputs):
        if s.name in feeds and np.asarray(feeds[s.name]).dtype.kind == "f":
            share = clipped_share(feeds[s.name], s.quantization)  # type: ignore[arg-type]
            if share > SATURATION_SHARE:
                lo, hi = representable(s.quantization)  # type: ignore[arg-type]
                lines.append(
                    f"input '{s.name}': {share:.0%} of the values fed lie outside [{lo:.4g}, {hi:.4g}], all that "
                    f"{s.quantization} can hold; they clip when quantized: the tensor's quantization parameters "
                    "do not fit its inputs (recalibrate, or check the converter's representative dataset)"
                )
    for s in quantized(outputs):
        if expected is not None and s.name in expected and np.asarray(expected[s.name]).dtype.kind == "f":
            share = clipped_share(expected[s.name], s.quantization)  # type: ignore[arg-type]
            if share > SATURATION_SHARE:
                lo, hi = representable(s.quantization)  # type: ignore[arg-type]
                lines.append(
                    f"output '{s.name}': {share:.0%} of the reference's values lie outside [{lo:.4g}, {hi:.4g}], all "
                    f"that {s.quantization} can hold: the tensor's quantization parameters do not fit its outputs"
                )
    return lines
