"""Try tfmot's quantization-aware training and pruning on every Keras Application; write a markdown matrix.

example:
  model-checks tfmot-matrix                                  # all constructors, with and without the top
  model-checks tfmot-matrix --only MobileNetV2 ResNet50 --budget 600 --out reports/tfmot_matrix.md
  model-checks tfmot-matrix --budget 3000 --resume           # take up where the last run's budget stopped it
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from model_checks.core.argtypes import non_negative_int, positive_int

EXTRAS = "keras"  # the extras it needs beyond the base install, named in --help

GREEN, RED, RESET = "\033[32m", "\033[31m", "\033[0m"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--only",
        nargs="+",
        metavar="APP",
        default=None,
        help="these constructors only, e.g. MobileNetV2 ResNet50 (default: every one)",
    )
    p.add_argument(
        "--top", choices=("both", "with", "without"), default="both", help="include_top variants to try (default: both)"
    )
    p.add_argument(
        "--budget",
        type=non_negative_int,
        metavar="SECONDS",
        default=None,
        help="start no new application after this many seconds; the rest is listed as not run (default: no limit; "
        "0 with --resume renders what is recorded)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        default=None,
        help="TensorFlow intra-op threads (default: TensorFlow's choice)",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        default=Path("reports/tfmot_matrix.md"),
        help="where the markdown goes (default: reports/tfmot_matrix.md)",
    )
    p.add_argument(
        "--results",
        type=Path,
        metavar="PATH",
        default=None,
        help="each configuration's result as a JSON line (default: beside --out, with the suffix .jsonl)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the results already in --results (recorded under the same library versions and deciding code) and run only the rest; "
        "without it the file is started afresh",
    )
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="green/red in the terminal (default: auto, when stdout is a terminal)",
    )


def _paint(text: str, ok: bool, color: bool) -> str:
    return f"{GREEN if ok else RED}{text}{RESET}" if color else text


def run(args: argparse.Namespace) -> int:
    from model_checks.backends.keras.loader import keras_modules
    from model_checks.core.errors import ModelChecksError
    from model_checks.core.fileio import write_text
    from model_checks.tfmot.matrix import Results, constructors, render, run_matrix

    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    tf, _ = keras_modules()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    known = constructors()
    unknown = [a for a in args.only or () if a not in known]
    if unknown:
        raise ModelChecksError(
            f"--only: {', '.join(unknown)} is not in tf_keras.applications (it has {', '.join(known)})"
        )
    tops = {"both": (False, True), "with": (True,), "without": (False,)}[args.top]

    results = Results(args.results or args.out.with_suffix(".jsonl"), args.resume)
    if args.resume:
        print(
            f"resuming: {len(results.done)} configuration(s) recorded in {results.path}"
            + (f"; {results.other} line(s) from other library versions or code left out" if results.other else ""),
            flush=True,
        )

    def show(e) -> None:  # type: ignore[no-untyped-def]
        results.record(e)
        label = f"{e.app}{'' if e.top else ' (no top)'}"
        print(
            f"{label:<34} quantize {_paint(e.quantize.cell(), e.quantize.ok, color)}   prune {_paint(e.prune.cell(), e.prune.ok, color)}   {e.seconds:.0f}s",
            flush=True,
        )

    m = run_matrix(args.only or known, tops, args.budget, show, results.done)
    write_text(args.out, render(m))
    c = m.counts()
    print(
        f"{c['entries']} configurations in {m.seconds:.0f}s"
        + (f" ({m.carried} carried over)" if m.carried else "")
        + f": quantize {c['quantize_pass']} pass, prune {c['prune_pass']} pass"
        + (f"; {c['not_run']} not run (budget; --resume takes them up)" if c["not_run"] else "")
        + f"; written to {args.out}"
    )
    return 0
