"""Export a PyTorch model to ONNX (named inputs and outputs, dynamic batch), checked against PyTorch first.

The model comes from a callable you name (MODULE:CALLABLE returning an nn.Module), optionally with a
state_dict file. The exported model is run by onnxruntime and compared with PyTorch before it is written.

example:
  model-checks export --model mypkg.models:build_cnn --weights cnn_state.pt --input-shape 1,1,28,28 \\
      --input-names input --output-names logits --out cnn.onnx
  model-checks export --model mypkg.models:build_cnn --input-shape 1,1,28,28 --exporter dynamo --opset 18 --out cnn.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_checks.core.argtypes import existing_file, names, object_ref, positive_int, shape

EXTRAS = "torch,producers"  # the extras it needs beyond the base install, named in --help


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The options that say which PyTorch model to build and what to feed it (shared with `trace`)."""
    p.add_argument(
        "--model",
        required=True,
        type=object_ref,
        metavar="MODULE:CALLABLE",
        help="a callable returning the nn.Module (required)",
    )
    p.add_argument(
        "--weights",
        type=existing_file(".pt", ".pth", ".bin"),
        metavar="FILE",
        help="a state_dict to load into it (default: none)",
    )
    p.add_argument(
        "--input-shape",
        required=True,
        type=shape,
        action="append",
        metavar="DIMS",
        help="shape of an example input, e.g. 1,3,224,224; repeat for each input (required)",
    )
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="where to write the model (required)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument(
        "--exporter",
        choices=("torchscript", "dynamo"),
        default="torchscript",
        help="torch.onnx.export dynamo=False (torchscript) or the torch.export-based one (default: torchscript)",
    )
    p.add_argument("--opset", type=positive_int, default=17, metavar="N", help="ONNX opset (default: 17)")
    p.add_argument(
        "--input-names",
        type=names,
        default=None,
        metavar="A,B",
        help="input names (default: input, or input_0,input_1...)",
    )
    p.add_argument(
        "--output-names", type=names, default=("output",), metavar="A,B", help="output names (default: output)"
    )
    p.add_argument(
        "--batch-axis",
        default="batch",
        metavar="NAME",
        help="name of the dynamic leading dim; 'none' for fixed shapes (default: batch)",
    )
    p.add_argument(
        "--no-fold-constants",
        action="store_true",
        help="keep the graph as written, e.g. BatchNormalization for a later fuse (default: fold)",
    )


def run(args: argparse.Namespace) -> int:
    from model_checks.producers.torch_export import export_onnx
    from model_checks.producers.torch_model import build_model
    from model_checks.producers.verify import ProducerError

    model, example = build_model(args.model, args.weights, args.input_shape)
    input_names = args.input_names or (
        ("input",) if len(example) == 1 else tuple(f"input_{i}" for i in range(len(example)))
    )
    if len(input_names) != len(example):
        raise ProducerError(f"--input-names: {len(input_names)} name(s) for {len(example)} --input-shape")
    result = export_onnx(
        model,
        example,
        args.out,
        input_names=input_names,
        output_names=args.output_names,
        opset=args.opset,
        exporter=args.exporter,
        batch_axis=None if args.batch_axis.lower() == "none" else args.batch_axis,
        fold_constants=not args.no_fold_constants,
    )
    print(result)
    return 0
