"""Trace or script a PyTorch model to a TorchScript archive (.pt), compared with the eager model.

A trace freezes data-dependent branches to the one the example took: the command warns when torch's
tracer says it did, and --check-shape runs other inputs through both to show the difference.

example:
  model-checks trace --model mypkg.models:build_cnn --weights cnn_state.pt --input-shape 1,1,28,28 --out cnn_traced.pt
  model-checks trace --model mypkg.models:build_cnn --input-shape 1,1,28,28 --kind script --out cnn_scripted.pt
"""

from __future__ import annotations

import argparse

from model_checks.commands.export import add_model_arguments
from model_checks.core.argtypes import shape

EXTRAS = "torch"  # the extras it needs beyond the base install, named in --help


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument(
        "--kind",
        choices=("trace", "script"),
        default="trace",
        help="torch.jit.trace or torch.jit.script (default: trace)",
    )
    p.add_argument(
        "--check-shape",
        type=shape,
        action="append",
        default=[],
        metavar="DIMS",
        help="also compare on seeded inputs of this shape, negative and positive (repeatable; default: none)",
    )


def run(args: argparse.Namespace) -> int:
    import warnings

    from model_checks.producers.torch_model import build_model, check_inputs
    from model_checks.producers.torchscript import FrozenBranchWarning, to_torchscript

    model, example = build_model(args.model, args.weights, args.input_shape)
    checks = check_inputs(args.check_shape)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FrozenBranchWarning)
        result = to_torchscript(
            model, example, args.out, args.kind, check_inputs=[(c,) for c in checks] if len(example) == 1 else []
        )
    for w in caught:
        if issubclass(w.category, FrozenBranchWarning):
            print(f"warning: {w.message}")
    print(result)
    return 0 if result else 1
