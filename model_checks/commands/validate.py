"""Validate the manifests under artifact roots without loading any model.

example:
  model-checks validate artifacts/
"""

from __future__ import annotations

import argparse
import sys
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
    if not arts:
        from model_checks.core.roots import no_artifact_message

        for r in args.roots:
            print(
                no_artifact_message(r.absolute(), Path.cwd()).replace(
                    "model-checks: ", "model-checks validate: error: ", 1
                ),
                file=sys.stderr,
            )
        return 1
    return 1 if bad else 0
