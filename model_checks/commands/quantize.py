"""Quantize an ONNX model with onnxruntime: dynamic (int8/uint8 weights) or static int8 QDQ (calibrated).

Pre-processing (onnxruntime's quant_pre_process) runs first unless --no-preprocess. Calibration data is an
.npz whose array is named by the model's input (or x); it is read in batches with a progress bar.

example:
  model-checks quantize model.onnx --mode dynamic --weight-type uint8 --out model_uint8.onnx
  model-checks quantize model.onnx --mode static --calibration calib.npz --out model_int8.onnx
  model-checks quantize model.onnx --mode static --calibration calib.npz --exclude conv4 --out model_int8.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_checks.core.argtypes import existing_file, positive_int

EXTRAS = "producers"  # the extras it needs beyond the base install, named in --help


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=existing_file(".onnx"), metavar="MODEL", help="the fp32 ONNX model")
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="where to write the quantized model (required)")
    p.add_argument("--mode", choices=("dynamic", "static"), default="dynamic", help="dynamic or static QDQ (default: dynamic)")
    p.add_argument("--weight-type", choices=("int8", "uint8"), default="int8", help="weight type (default: int8)")
    p.add_argument("--calibration", type=existing_file(".npz"), metavar="NPZ", help="calibration inputs; required for --mode static")
    p.add_argument("--per-channel", action=argparse.BooleanOptionalAction, default=None,
                   help="per-channel weight scales (default: on for static, off for dynamic)")
    p.add_argument("--method", choices=("minmax", "entropy", "percentile"), default="minmax", help="calibration method (default: minmax)")
    p.add_argument("--batch", type=positive_int, default=16, metavar="N", help="calibration batch size (default: 16)")
    p.add_argument("--max-batches", type=positive_int, default=None, metavar="N", help="calibrate on at most N batches (default: all)")
    p.add_argument("--exclude", nargs="+", default=[], metavar="NODE",
                   help="nodes to keep in float (onnxruntime's nodes_to_exclude), as the localisation's SQNR list names them (default: none)")
    p.add_argument("--no-preprocess", action="store_true", help="skip quant_pre_process (default: run it)")


def run(args: argparse.Namespace) -> int:
    from model_checks.producers import ort_quantize
    from model_checks.producers.verify import ProducerError

    if args.mode == "dynamic":
        if args.calibration:
            raise ProducerError("--calibration: dynamic quantization is not calibrated; use --mode static")
        result = ort_quantize.quantize_dynamic(args.model, args.out, args.weight_type, per_channel=bool(args.per_channel),
                                               preprocess=not args.no_preprocess, exclude=args.exclude)
    else:
        if args.calibration is None:
            raise ProducerError("--calibration: --mode static needs calibration data (an .npz of real inputs)")
        result = ort_quantize.quantize_static(args.model, args.out, args.calibration, per_channel=args.per_channel is not False,
                                              preprocess=not args.no_preprocess, weight_type=args.weight_type, method=args.method,
                                              batch=args.batch, max_batches=args.max_batches, exclude=args.exclude)
    print(result)
    return 0
