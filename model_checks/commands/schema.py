"""Print the JSON Schema of metadata.yaml (or policy.yaml), for editors and validators.

example:
  model-checks schema > metadata.schema.json
  model-checks schema --kind policy
"""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kind", choices=("metadata", "policy"), default="metadata", help="which file's schema (default: metadata)"
    )


def run(args: argparse.Namespace) -> int:
    from model_checks.manifest.schema import bundled

    print(json.dumps(bundled(args.kind), indent=2))  # self-contained: an editor reads one file
    return 0
