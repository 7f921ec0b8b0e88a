"""Write an artifact directory whose metadata.yaml is measured from the model, so the gate passes it.

Opset, precision, inputs and outputs are read off the model as the gate reads them; sha256, the runtime,
latency_ms (p50, batch 1) and, with --eval and --reference, accuracy_drop are measured.

example:
  model-checks package model_int8.onnx --out artifacts/cnn_int8 --name cnn_int8 --version 1.0 \\
      --reference artifacts/cnn_fp32/model.onnx --samples samples.npz --eval eval.npz \\
      --optimization quantize_qdq --tolerance rel_l2=null --tolerance mae=null --tolerance top1_agreement=0.95
  model-checks package cnn_traced.pt --out artifacts/cnn_traced --name cnn_traced \
      --reference artifacts/cnn_fp32/model.onnx --interface-from artifacts/cnn_fp32/model.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_checks.core.argtypes import existing_dir, existing_file, metric_limit, names, positive_int, value_range
from model_checks.producers.figures import RUNS

EXTRAS = "producers"  # the extras it needs beyond the base install, named in --help


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        type=existing_file(".onnx", ".pt", ".pth", ".keras", ".h5", ".tflite"),
        metavar="MODEL",
        help="the model file",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="the artifact directory to write (required)")
    p.add_argument("--name", required=True, metavar="NAME", help="model_name (required)")
    p.add_argument("--version", default="1.0", metavar="V", help="version (default: 1.0)")
    p.add_argument(
        "--root",
        type=existing_dir,
        default=None,
        metavar="DIR",
        help="the artifacts root every path must stay in (default: --out's parent)",
    )
    p.add_argument(
        "--reference",
        type=existing_file(".onnx", ".pt", ".pth", ".keras", ".h5", ".tflite"),
        metavar="FILE",
        help="the model this one is compared with, inside the root (default: none)",
    )
    p.add_argument(
        "--samples",
        type=existing_file(".npz"),
        metavar="NPZ",
        help="real inputs for equivalence, arrays named by input (default: none)",
    )
    p.add_argument(
        "--eval",
        type=existing_file(".npz"),
        metavar="NPZ",
        help="labelled data with arrays x and y, to measure accuracy (default: none)",
    )
    p.add_argument(
        "--optimization",
        type=names,
        default=(),
        metavar="A,B",
        help="passes and producer steps applied (default: none)",
    )
    p.add_argument(
        "--tolerance",
        type=metric_limit,
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="an equivalence tolerance, e.g. rel_l2=1e-2 or mae=null (repeatable; default: the gate's)",
    )
    p.add_argument(
        "--range",
        type=value_range,
        default=None,
        metavar="LO,HI",
        help="value range of the inputs (default: not declared)",
    )
    p.add_argument(
        "--layout", choices=("NCHW", "NHWC", "NC"), default=None, help="layout of the inputs (default: not declared)"
    )
    p.add_argument(
        "--interface-from",
        type=existing_file(".onnx"),
        metavar="ONNX",
        help="declare the inputs and outputs of this ONNX model (for a TorchScript archive, which names none; default: the model's own)",
    )
    p.add_argument(
        "--roundtrip",
        choices=("torch",),
        action="append",
        default=[],
        metavar="TO",
        help="have the gate convert the ONNX model to TO and compare the two (torch; repeatable; default: none)",
    )
    p.add_argument(
        "--threads", type=positive_int, default=1, metavar="N", help="threads for the latency measurement (default: 1)"
    )
    p.add_argument(
        "--runs", type=positive_int, default=RUNS, metavar="N", help=f"timed runs for latency_ms (default: {RUNS})"
    )


def run(args: argparse.Namespace) -> int:
    from model_checks.producers.package import package

    twin = None
    if args.interface_from:
        from model_checks.backends.onnx.facts import model_facts

        twin = model_facts(args.interface_from, args.interface_from.parent)
    result = package(
        args.model,
        args.out,
        model_name=args.name,
        version=args.version,
        root=args.root,
        reference=args.reference,
        samples=args.samples,
        eval_data=args.eval,
        optimization=args.optimization,
        tolerance=dict(args.tolerance) or None,
        input_range=args.range,
        layout=args.layout,
        roundtrip=args.roundtrip,
        threads=args.threads,
        runs=args.runs,
        inputs=twin.inputs if twin else None,
        outputs=twin.outputs if twin else None,
    )
    print(result)
    return 0
