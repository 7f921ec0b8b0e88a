"""Show where an ONNX artifact and its ONNX reference diverge: tensor by tensor, the error each node introduces.

It runs the artifact's equivalence cases, takes the first failing one (else the first), and runs both models
with intermediate tensors exposed, in an isolated worker, under a time and a memory cap. Unlike the lines under
a failed check (which stop at the first node over the tolerance, within a few seconds), it measures every tensor.

example:
  model-checks localize artifacts/digits_cnn_int8_static
  model-checks localize artifacts/digits_cnn_fp16 --json
"""

from __future__ import annotations

import argparse
import json
import time

from model_checks.core.argtypes import existing_dir, positive_number


def add_arguments(p: argparse.ArgumentParser) -> None:
    from model_checks.localize.runner import DEFAULT_MEMORY_CAP_MB, DEFAULT_TIME_CAP_S

    p.add_argument("artifact", type=existing_dir, metavar="ARTIFACT_DIR", help="a directory with metadata.yaml")
    p.add_argument(
        "--root",
        type=existing_dir,
        default=None,
        metavar="DIR",
        help="the artifacts root every path must stay inside (default: the artifact's parent)",
    )
    p.add_argument("--json", action="store_true", help="print the table as JSON (default: text)")
    p.add_argument(
        "--time-cap",
        type=positive_number(float, "seconds"),
        default=DEFAULT_TIME_CAP_S,
        metavar="S",
        help=f"stop measuring after S seconds (default: {DEFAULT_TIME_CAP_S:g})",
    )
    p.add_argument(
        "--memory-cap",
        type=positive_number(int, "MiB"),
        default=DEFAULT_MEMORY_CAP_MB,
        metavar="MIB",
        help=f"intermediate tensors alive at once, both models together (default: {DEFAULT_MEMORY_CAP_MB})",
    )


def run(args: argparse.Namespace) -> int:
    from model_checks.checks.context import CheckContext
    from model_checks.checks.equivalence import comparisons
    from model_checks.core.discovery import discover
    from model_checks.core.pool import ModelPool
    from model_checks.isolation.limits import Limits
    from model_checks.localize.gate import applies, find
    from model_checks.localize.runner import Caps
    from model_checks.safety.text import printable

    d = args.artifact.resolve()
    root = (args.root or d.parent).resolve()
    art = next((a for a in discover([root]) if a.dir.resolve() == d), None)
    if art is None or art.manifest is None:
        why = art.error if art is not None else f"no metadata.yaml under {root} names {d}"
        raise SystemExit(f"model-checks localize: error: {printable(str(why))}")
    with ModelPool(isolation=Limits()) as pool:
        ctx = CheckContext(art, pool)
        if ctx.reference_path is None or not applies(ctx):
            raise SystemExit(
                f"model-checks localize: error: {printable(str(art.rel_dir))}: needs an ONNX artifact "
                f"whose reference.path is an ONNX model"
            )
        start = time.monotonic()
        results = comparisons(ctx)
        check_s = time.monotonic() - start
        label, comparison = next(((lbl, c) for lbl, c in results if not c), results[0])
        found = find(ctx, label, comparison, Caps(args.time_cap, args.memory_cap, "--time-cap", check_s))
    print(json.dumps(found.to_json(), indent=1) if args.json else str(found))
    return 0
