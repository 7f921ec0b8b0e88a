"""Argument types for options and commands: each parses one value or raises argparse's error naming the bad
value, so `--model-checks-timeout=abc` and `model-checks serve --port abc` answer alike. One home, used by the
pytest options and the CLI."""

from __future__ import annotations

import argparse


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
