"""Optimize an ONNX model with named onnxoptimizer passes; outputs are compared before it is written.

example:
  model-checks optimize model.onnx --out model_opt.onnx
  model-checks optimize model.onnx --passes eliminate_deadend,fuse_bn_into_conv --out model_opt.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_checks.core.argtypes import existing_file, names


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=existing_file(".onnx"), metavar="MODEL", help="the ONNX model")
    p.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help="where to write the optimized model (required)"
    )
    p.add_argument(
        "--passes",
        type=names,
        default=None,
        metavar="A,B",
        help="onnxoptimizer passes (default: eliminate_* and fuse_* passes that keep the function: see producers.optimize.DEFAULT_PASSES)",
    )
    p.add_argument(
        "--samples",
        type=existing_file(".npz"),
        metavar="NPZ",
        help="inputs to compare on, arrays named by input (default: seeded)",
    )


def run(args: argparse.Namespace) -> int:
    from model_checks.core.inputs import load_npz
    from model_checks.producers.optimize import DEFAULT_PASSES, ProducerError, check_passes, optimize

    try:
        passes = check_passes(args.passes or DEFAULT_PASSES)
    except ProducerError as e:
        raise ProducerError(f"--{e}") from None
    samples = load_npz(args.samples, "--samples") if args.samples else None
    print(optimize(args.model, args.out, passes, samples=samples))
    return 0
