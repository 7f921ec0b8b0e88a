"""Argument types for options and commands: each parses one value or raises argparse's error naming the bad
value, so `--model-checks-timeout=abc` and `model-checks serve --port abc` answer alike, and argparse names the
argument (`argument --calibration: calib.npy is not an .npz file`). One home, used by the pytest options and every
command of the CLI. Nothing heavy is imported here."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable


def positive_number(kind: type, unit: str):  # type: ignore[no-untyped-def]
    def parse(text: str):  # type: ignore[no-untyped-def]
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of {unit}")
        return value

    parse.__name__ = unit
    return parse


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction in [0, 1) such as 5% or 0.05")
    return value


def port(text: str) -> int:
    """A TCP port, 0-65535 (0 lets the system pick a free one)."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number 0-65535")
    return int(text)


MAX_SHARDS = 10_000  # more CI jobs than any matrix runs; a bigger N is a typo or an attack (memory grows with N)


def shard(text: str) -> tuple[int, int]:
    """`K/N`: shard K (1-based) of N, N at most MAX_SHARDS."""
    k, sep, n = text.partition("/")
    try:
        kk, nn = int(k), int(n)
    except ValueError:
        kk = nn = 0
    if not sep or not 1 <= kk <= nn:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shard K/N with 1 <= K <= N, such as 2/4")
    if nn > MAX_SHARDS:
        raise argparse.ArgumentTypeError(f"{text!r}: {nn} shards is more than the {MAX_SHARDS} the gate deals")
    return kk, nn


def existing_file(*suffixes: str) -> Callable[[str], Path]:
    """A type for an existing file, optionally with one of `suffixes`."""

    def parse(text: str) -> Path:
        p = Path(text)
        if suffixes and p.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"{text} is not a {' or '.join(suffixes)} file")
        if not p.is_file():
            raise argparse.ArgumentTypeError(f"{text} does not exist")
        return p

    parse.__name__ = "file"
    return parse


def existing_dir(text: str) -> Path:
    p = Path(text)
    if not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a directory")
    return p


def shape(text: str) -> tuple[int, ...]:
    """`1,1,8,8` -> (1, 1, 8, 8)."""
    try:
        dims = tuple(int(d) for d in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 1,3,224,224") from None
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"{text!r}: every dimension must be a positive integer")
    return dims


def names(text: str) -> tuple[str, ...]:
    """`a,b` -> ("a", "b"), no empty names."""
    out = tuple(n.strip() for n in text.split(","))
    if not all(out):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty name")
    return out


def positive_int(text: str, least: int = 1) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < least:
        raise argparse.ArgumentTypeError(f"{text!r} must be {'positive' if least == 1 else f'at least {least}'}")
    return v


def non_negative_int(text: str) -> int:
    return positive_int(text, least=0)


def value_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range like 0,1") from None
    if lo > hi:
        raise argparse.ArgumentTypeError(f"{text!r}: low is greater than high")
    return lo, hi


def metric_limit(text: str) -> tuple[str, float | None]:
    """`rel_l2=1e-3` or `mae=null` (null drops the default)."""
    from model_checks.manifest.model import METRICS

    key, sep, value = text.partition("=")
    if not sep or key not in METRICS:
        raise argparse.ArgumentTypeError(f"{text!r} is not METRIC=VALUE with METRIC one of {', '.join(METRICS)}")
    if value.strip().lower() in ("null", "none"):
        return key, None
    try:
        return key, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not a number or null") from None


def object_ref(text: str) -> str:
    """`package.module:attribute`, checked for form here and imported only when the command runs."""
    module, sep, attr = text.partition(":")
    if not sep or not module or not attr:
        raise argparse.ArgumentTypeError(f"{text!r} is not MODULE:CALLABLE, e.g. mypkg.models:build_cnn")
    return text
