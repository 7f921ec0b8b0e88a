"""Convert an ONNX model to fp16 (onnxconverter-common), checked against the fp32 model before writing.

Inputs and outputs stay fp32 unless --no-keep-io-types, so callers and an fp32 reference see the same dtypes.

example:
  model-checks fp16 model.onnx --out model_fp16.onnx
  model-checks fp16 model.onnx --no-keep-io-types --samples samples.npz --out model_fp16.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_checks.core.argtypes import existing_file

EXTRAS = "producers"  # the extras it needs beyond the base install, named in --help


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=existing_file(".onnx"), metavar="MODEL", help="the fp32 ONNX model")
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="where to write the fp16 model (required)")
    p.add_argument(
        "--keep-io-types",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep fp32 inputs and outputs (default: on)",
    )
    p.add_argument(
        "--samples",
        type=existing_file(".npz"),
        metavar="NPZ",
        help="inputs to compare on, arrays named by input (default: seeded)",
    )


def run(args: argparse.Namespace) -> int:
    from model_checks.core.inputs import load_npz
    from model_checks.producers.fp16 import to_fp16

    samples = load_npz(args.samples, "--samples") if args.samples else None
    print(to_fp16(args.model, args.out, keep_io_types=args.keep_io_types, samples=samples))
    return 0
