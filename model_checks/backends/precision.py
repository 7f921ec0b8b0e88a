"""Precision judged from how many parameter values each dtype holds; shared by every backend (the ONNX backend
first weighs quantization nodes, which only a graph shows)."""

from __future__ import annotations

from collections import Counter

FLOAT_NAMES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64"}


def float_precision(elems: Counter, what: str = "weight") -> tuple[str, str]:
    """(precision, why): the dtype holding >= 99% of the float values, else `mixed` with the shares."""
    floats = {k: v for k, v in elems.items() if k in FLOAT_NAMES}
    total = sum(floats.values())
    if not total:
        return "fp32", f"no float {what}s; fp32 assumed"
    main = max(floats, key=floats.get)  # type: ignore[arg-type]
    share = floats[main] / total
    if share >= 0.99:
        return FLOAT_NAMES[main], f"{share:.1%} of {what} values are {main}"
    return "mixed", f"{what}s are " + ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(floats.items()))
