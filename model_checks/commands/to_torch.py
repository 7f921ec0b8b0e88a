"""Convert an ONNX model to a TorchScript archive (onnx2torch), checked against onnxruntime before it is written.

The archive keeps the ONNX input and output names (in its extra file model_checks_io.json). An op the
converter lacks, or one that needs a working torchvision (NMS, RoIAlign, DeformConv), is named and nothing
is written.

example:
  model-checks to-torch model.onnx model.pt
  model-checks to-torch model_fp16.onnx model_fp16.pt --tolerance rel_l2=1e-3 --tolerance max_abs=0.01
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_checks.core.argtypes import existing_file, metric_limit


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=existing_file(".onnx"), metavar="MODEL.onnx", help="the ONNX model")
    p.add_argument("out", type=Path, metavar="OUT.pt", help="where to write the TorchScript archive")
    p.add_argument(
        "--tolerance",
        type=metric_limit,
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="a limit for the check against onnxruntime, repeatable (default: rel_l2=1e-4 and max_abs=1e-3)",
    )
    p.add_argument(
        "--samples",
        type=existing_file(".npz"),
        metavar="NPZ",
        help="inputs to compare on, arrays named by input (default: seeded, at each batch size the gate tries)",
    )


def run(args: argparse.Namespace) -> int:
    from model_checks.manifest.model import Limit
    from model_checks.producers.to_torch import write

    limits = None
    if args.tolerance:
        given = {k: Limit(v, "--tolerance") for k, v in args.tolerance if v is not None}
        limits = lambda _name: given  # noqa: E731
    from model_checks.core.inputs import load_npz

    samples = load_npz(args.samples, "--samples") if args.samples else None
    print(write(args.model, args.out, tolerance=limits, samples=samples))
    return 0
