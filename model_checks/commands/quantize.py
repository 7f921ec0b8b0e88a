"""Quantize an ONNX model with onnxruntime: dynamic (int8/uint8 weights) or static int8 QDQ (calibrated).

The settings are those onnxruntime recommends for the CPU the model will run on (--target); the default,
portable, keeps weights in 7 bits (reduce_range) so that x86 CPUs without VNNI, whose int8 kernels sum pairs of
products in 16 bits, give the same answers as the rest. The output says what was chosen. Pre-processing
(onnxruntime's quant_pre_process) runs first unless --no-preprocess. Calibration data is an .npz whose array is
named by the model's input (or x); it is read in batches with a progress bar. Nothing is written until the
result passes onnx.checker and onnxruntime, quantized at least one weight, and matches the source (on the first
calibration batches, --samples, or seeded inputs) within --tolerance.

example:
  model-checks quantize model.onnx --mode dynamic --weight-type uint8 --out model_uint8.onnx
  model-checks quantize model.onnx --mode static --calibration calib.npz --out model_int8.onnx
  model-checks quantize model.onnx --mode static --calibration calib.npz --target x86-vnni --out model_int8.onnx
  model-checks quantize model.onnx --mode static --calibration calib.npz --exclude conv4 --out model_int8.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_checks.core.argtypes import existing_file, metric_limit, positive_int

EXTRAS = "producers"  # the extras it needs beyond the base install, named in --help
TARGETS = ("portable", "x86-avx2", "x86-vnni", "arm64")  # producers.ort_quantize.TARGETS, without importing onnxruntime


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=existing_file(".onnx"), metavar="MODEL", help="the fp32 ONNX model")
    p.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help="where to write the quantized model (required)"
    )
    p.add_argument(
        "--mode", choices=("dynamic", "static"), default="dynamic", help="dynamic or static QDQ (default: dynamic)"
    )
    p.add_argument(
        "--target",
        choices=TARGETS,
        default="portable",
        help="the CPU it will run on: portable (7-bit weights, safe on x86 without VNNI), x86-avx2 (the same), "
        "x86-vnni or arm64 (full 8-bit weights) (default: portable)",
    )
    p.add_argument(
        "--weight-type", choices=("int8", "uint8"), default=None, help="weight type (default: the target's, int8)"
    )
    p.add_argument(
        "--activation-type",
        choices=("int8", "uint8"),
        default=None,
        help="activation type for --mode static (default: the target's: uint8, int8 for arm64)",
    )
    p.add_argument(
        "--reduce-range",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="7-bit int8 weights (default: on for portable and x86-avx2, off for x86-vnni and arm64)",
    )
    p.add_argument(
        "--calibration",
        type=existing_file(".npz"),
        metavar="NPZ",
        help="calibration inputs; required for --mode static",
    )
    p.add_argument(
        "--samples",
        type=existing_file(".npz"),
        metavar="NPZ",
        help="inputs to compare with the source on, arrays named by input (default: calibration batches, or seeded)",
    )
    p.add_argument(
        "--tolerance",
        type=metric_limit,
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="a limit for the comparison with the source, repeatable (default: rel_l2=0.1)",
    )
    p.add_argument(
        "--per-channel",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="per-channel weight scales (default: on for static, off for dynamic)",
    )
    p.add_argument(
        "--method",
        choices=("minmax", "entropy", "percentile"),
        default="minmax",
        help="calibration method (default: minmax)",
    )
    p.add_argument("--batch", type=positive_int, default=16, metavar="N", help="calibration batch size (default: 16)")
    p.add_argument(
        "--max-batches",
        type=positive_int,
        default=None,
        metavar="N",
        help="calibrate on at most N batches (default: all)",
    )
    p.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="NODE",
        help="nodes to keep in float (onnxruntime's nodes_to_exclude), as the localisation's SQNR list names "
        "them (default: none)",
    )
    p.add_argument("--no-preprocess", action="store_true", help="skip quant_pre_process (default: run it)")
    p.add_argument(
        "--constants-to-initializers",
        action="store_true",
        help="make the weights that Constant nodes hold initializers first, so the quantizer sees them (default: off)",
    )
    p.add_argument(
        "--upgrade-opset",
        action="store_true",
        help="raise a model below opset 13 to 13 (onnx.version_converter) for per-channel scales (default: off)",
    )


def run(args: argparse.Namespace) -> int:
    from model_checks.core.inputs import load_npz
    from model_checks.producers import ort_quantize
    from model_checks.producers.verify import ProducerError

    tolerance = dict(args.tolerance) or None
    common = {
        "preprocess": not args.no_preprocess,
        "exclude": args.exclude,
        "target": args.target,
        "reduce_range": args.reduce_range,
        "tolerance": tolerance,
        "constants_to_initializers": args.constants_to_initializers,
        "upgrade_opset": args.upgrade_opset,
    }
    if args.mode == "dynamic":
        if args.calibration:
            raise ProducerError("--calibration: dynamic quantization is not calibrated; use --mode static")
        if args.activation_type:
            raise ProducerError(
                "--activation-type: dynamic quantization's activations are always uint8; use --mode static"
            )
        samples = load_npz(args.samples, "--samples") if args.samples else None
        result = ort_quantize.quantize_dynamic(
            args.model, args.out, args.weight_type, per_channel=bool(args.per_channel), samples=samples, **common
        )
    else:
        if args.calibration is None:
            raise ProducerError("--calibration: --mode static needs calibration data (an .npz of real inputs)")
        if args.samples:
            raise ProducerError("--samples: --mode static compares with the source on the first calibration batches")
        result = ort_quantize.quantize_static(
            args.model,
            args.out,
            args.calibration,
            per_channel=args.per_channel,
            weight_type=args.weight_type,
            activation_type=args.activation_type,
            method=args.method,
            batch=args.batch,
            max_batches=args.max_batches,
            **common,
        )
    print(result)
    return 0
