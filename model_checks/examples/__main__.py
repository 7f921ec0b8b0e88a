"""`python -m model_checks.examples artifacts [--out DIR] [--only torch|keras|sklearn|transformer]`: rebuild the example artifacts
from scikit-learn's digits and print the size/latency/throughput/accuracy table (also written to
reports/artifacts-table.md)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from model_checks.examples import FAMILIES


def main(argv: list[str] | None = None) -> int:
    if os.environ.get("PYTHONHASHSEED") != "0":
        # torch.jit.script writes a module's constants in set order, which follows Python's per-process string
        # hashing: fix the seed, so a scripted archive comes out byte for byte the same on every rebuild
        argv = sys.argv[1:] if argv is None else argv
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        return subprocess.run([sys.executable, "-m", "model_checks.examples", *argv], env=env).returncode
    p = argparse.ArgumentParser(prog="python -m model_checks.examples", description=__doc__)
    p.add_argument("what", choices=["artifacts"], help="what to build")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("artifacts"),
        metavar="DIR",
        help="the artifacts root to write (default: artifacts)",
    )
    p.add_argument(
        "--only", choices=list(FAMILIES), action="append", help="build one family (repeatable; default: all)"
    )
    p.add_argument(
        "--table",
        type=Path,
        default=Path("reports/artifacts-table.md"),
        metavar="PATH",
        help="where to write the measured table (default: reports/artifacts-table.md)",
    )
    args = p.parse_args(argv)
    from model_checks.examples.build import build
    from model_checks.examples.table import markdown, rows

    made = build(args.out, tuple(args.only or FAMILIES))
    for m in made:
        print(m)
    text = markdown(rows(made, args.out))
    print(text)
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
