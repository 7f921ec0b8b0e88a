"""Convert a Keras model to ONNX through tf2onnx: fp32, fp16, uint8 (dynamic) or int8 (static QDQ, calibrated).

The fp32 conversion is compared with Keras before anything is written; temporary files are always removed.

example:
  model-checks convert-keras model.keras --variant fp32 --out model.onnx
  model-checks convert-keras model.keras --variant int8 --calibration calib.npz --out model_int8.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_checks.core.argtypes import existing_file, positive_int

EXTRAS = "keras,producers"  # the extras it needs beyond the base install, named in --help


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model", type=existing_file(".keras", ".h5"), metavar="MODEL", help="the Keras model (.keras, or .h5)"
    )
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="where to write the ONNX model (required)")
    p.add_argument(
        "--variant", choices=("fp32", "fp16", "uint8", "int8"), default="fp32", help="what to make (default: fp32)"
    )
    p.add_argument(
        "--calibration",
        type=existing_file(".npz"),
        metavar="NPZ",
        help="calibration inputs; required for --variant int8",
    )
    p.add_argument(
        "--samples",
        type=existing_file(".npz"),
        metavar="NPZ",
        help="inputs to check the conversion on (default: seeded)",
    )
    p.add_argument("--opset", type=positive_int, default=17, metavar="N", help="ONNX opset (default: 17)")


def run(args: argparse.Namespace) -> int:
    from model_checks.producers.keras_convert import convert_keras
    from model_checks.producers.loading import load_array
    from model_checks.producers.verify import ProducerError

    if args.variant == "int8" and args.calibration is None:
        raise ProducerError("--calibration: --variant int8 is calibrated on real inputs; pass an .npz of them")
    samples = load_array(args.samples, "--samples") if args.samples else None
    print(
        convert_keras(
            args.model, args.out, args.variant, samples=samples, calibration=args.calibration, opset=args.opset
        )
    )
    return 0
