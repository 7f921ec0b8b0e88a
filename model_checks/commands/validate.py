"""Validate the manifests under artifact roots without loading any model.

example:
  model-checks validate artifacts/
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("roots", nargs="+", type=Path, metavar="DIR", help="artifact roots to search for metadata.yaml")


def run(args: argparse.Namespace) -> int:
    from model_checks.core.discovery import discover

    for r in args.roots:
        if not r.is_dir():
            raise SystemExit(f"model-checks validate: error: {r} is not a directory")
    arts = discover(args.roots)
    bad = [a for a in arts if a.error]
    for a in arts:
        print(f"{'FAIL' if a.error else 'ok  '} {a.id}  ({a.rel_dir})")
        if a.error:
            print("     " + a.error.replace("\n", "\n     "))
    print(f"{len(arts)} artifact(s), {len(bad)} invalid")
    return 1 if bad else 0
