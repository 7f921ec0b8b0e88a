"""Argument types shared by the producer commands: each names the bad value, and argparse names the argument
(`argument --calibration: calib.npy is not an .npz file`). Nothing heavy is imported here."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any, Callable


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


def load_object(ref: str, option: str) -> Any:
    """Import `module:attribute`; an error names the option that gave it."""
    from model_checks.producers.verify import ProducerError

    module, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise ProducerError(f"{option}: cannot import {module} ({e})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ProducerError(f"{option}: {module} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def load_array(path: Path, option: str) -> Any:
    """The array of an .npz for a single-input model (named x, input, inputs or samples, else its only one)."""
    from model_checks.core.inputs import load_npz
    from model_checks.producers.calibration import pick_array

    return pick_array(load_npz(path, option), None, f"{option}: {path.name}")
