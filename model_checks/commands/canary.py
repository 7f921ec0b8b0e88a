"""Would bumping the runtime change a verdict? Every artifact's cases on the pinned release and a candidate.

The candidate is installed with pip (from your configured index, --no-deps) into a private cached directory,
never into this environment, and imported ahead of the installed release in separate worker processes. Writes
canary.md, canary.xml (junit) and canary.json to --out; exits 1 when a verdict would change.

example:
  model-checks canary onnxruntime==1.32.0 artifacts
  model-checks canary openvino==2026.3.0 artifacts --offline
  model-checks canary onnxruntime artifacts --bisect 1.20.1 1.31.1 --exact
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_checks.core.argtypes import existing_dir


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "candidate", metavar="PACKAGE==VERSION", help="onnxruntime==X or openvino==X (with --bisect: the package alone)"
    )
    p.add_argument("roots", nargs="*", type=existing_dir, metavar="ROOT", help="artifact roots (default: artifacts)")
    p.add_argument(
        "--bisect",
        nargs=2,
        metavar=("FIRST", "LAST"),
        help="walk the releases from FIRST to LAST to the first one that would change a verdict",
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="where candidates are installed and reused (default: $MODEL_CHECKS_CACHE or ~/.cache/model-checks)",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="use only candidates already in the cache; install nothing (default: install)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        metavar="DIR",
        help="where canary.md/.xml/.json go (default: reports)",
    )
    p.add_argument(
        "--exact",
        action="store_true",
        help="count any change of an output as drift, not only one beyond the artifact's tolerance "
        "(default: tolerance)",
    )
    p.add_argument(
        "--trust-code", action="store_true", help="load artifact formats that carry code (default: refuse them)"
    )


def run(args: argparse.Namespace) -> int:
    from model_checks.canary.install import cache_root, parse_spec, releases
    from model_checks.canary.run import bisect, canary

    roots = [r.resolve() for r in (args.roots or [existing_dir("artifacts")])]
    cache = cache_root(args.cache)
    if args.bisect:
        package = parse_spec(args.candidate if "==" in args.candidate else f"{args.candidate}==0").package
        print(f"bisecting {package} from {args.bisect[0]} to {args.bisect[1]} over {', '.join(str(r) for r in roots)}")
        found = bisect(
            package,
            *args.bisect,
            releases(package, cache),
            lambda c: canary(c, roots, cache, args.offline, args.trust_code, exact=args.exact),
        )
        if found is None:
            print(
                f"no flip: {package} {args.bisect[0]} and {args.bisect[1]} give the same answer (above); "
                "nothing to bisect"
            )
            return 0
        older, newer, newer_safe = found
        if newer_safe:
            print(f"{package} {older} is the last release that is not safe to bump to; {newer} is the first that is")
        else:
            print(f"{package} {newer} is the first release that is not safe to bump to (last safe: {older})")
        return 1
    report = canary(parse_spec(args.candidate), roots, cache, args.offline, args.trust_code, exact=args.exact)
    print(report.table())
    written = report.write(args.out)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0 if report.safe else 1
