"""Convert a Keras model to TFLite: float32, float16, dynamic-range or full-integer int8 (calibrated, or through QAT).

The result runs in LiteRT against the Keras model on samples before anything is written.

example:
  model-checks convert-tflite model.keras --mode float16 --out model_fp16.tflite
  model-checks convert-tflite model.keras --mode int8 --calibration calib.npz --io-type uint8 --out model_int8.tflite
  model-checks convert-tflite model.keras --mode int8 --qat --calibration train.npz --out model_qat.tflite
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_checks.core.argtypes import existing_file

EXTRAS = "keras,tflite"  # the extras it needs beyond the base install, named in --help

MODES = ("float32", "float16", "dynamic", "int8")  # producers.tflite_convert.MODES, without importing TensorFlow


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model", type=existing_file(".keras", ".h5"), metavar="MODEL", help="the Keras model (.keras, or .h5)"
    )
    p.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help="where to write the .tflite model (required)"
    )
    p.add_argument("--mode", choices=MODES, default="float32", help="what to make (default: float32)")
    p.add_argument(
        "--calibration",
        type=existing_file(".npz"),
        metavar="NPZ",
        help="real inputs: the representative dataset for --mode int8, or what --qat fits on; required for int8",
    )
    p.add_argument(
        "--io-type",
        choices=("int8", "uint8"),
        default="int8",
        help="the int8 model's input and output type (default: int8)",
    )
    p.add_argument(
        "--qat",
        action="store_true",
        help="int8 through quantization-aware training (tfmot) and a short fit (default: off)",
    )
    p.add_argument(
        "--samples",
        type=existing_file(".npz"),
        metavar="NPZ",
        help="inputs to verify the conversion on (default: the calibration data, else seeded)",
    )


def run(args: argparse.Namespace) -> int:
    from model_checks.producers.loading import load_array
    from model_checks.producers.tflite_convert import convert_tflite
    from model_checks.producers.verify import ProducerError

    if args.mode == "int8" and args.calibration is None:
        raise ProducerError(
            "--calibration: --mode int8 is calibrated (or, with --qat, fit) on real inputs; pass an .npz of them"
        )
    if args.qat and args.mode != "int8":
        raise ProducerError(
            f"--qat: quantization-aware training ends in a full-integer model; use --mode int8, not {args.mode}"
        )
    samples = load_array(args.samples, "--samples") if args.samples else None
    print(
        convert_tflite(
            args.model,
            args.out,
            args.mode,
            calibration=args.calibration,
            samples=samples,
            io_type=args.io_type,
            qat=args.qat,
        )
    )
    return 0
