"""Run the gate on a Ray cluster, one task per shard, and merge the reports into OUT

Deals the artifacts under each DIR into shards as `--model-checks-shard K/N` does, runs each shard's gate
(`pytest`, with the pytest options given after the known ones) as a Ray task, and writes OUT/junit.xml,
OUT/summary.md and OUT/summary.json as `model-checks merge` does, each shard's own reports under OUT/shards/.
Shards with gpu budgets ask for a GPU (num_gpus=1), shards with cpu budgets for a whole node. A task whose
worker or node dies is retried once, then its artifacts are reported as lost. Without an address Ray starts
locally; with one, every node must see the roots and this checkout at the same paths.

example:
  model-checks run --ray --model-checks artifacts -o reports -k "not tfmot"
  model-checks run --ray ray://head:10001 --model-checks /shared/artifacts -o reports --shards 16
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXTRAS = "ray"  # the extras it needs beyond the base install, named in --help

PYTEST_ARGS = True  # unknown options are handed to pytest (cli.main)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        required=True,
        help="the Ray cluster to use (ray://host:10001, or 'auto'); without ADDRESS, Ray starts on this machine",
    )
    from model_checks.plugin.options import add_to

    add_to(p, "--model-checks", required=True, type=Path, default=None, dest="roots")
    p.add_argument(
        "-o",
        "--out",
        required=True,
        type=Path,
        metavar="OUT",
        help="where to write junit.xml, summary.md, summary.json",
    )
    p.add_argument(
        "--shards",
        type=_positive,
        default=None,
        metavar="N",
        help="how many shards (tasks). Default: the cluster's CPUs, at most one per artifact group",
    )
    p.add_argument(
        "--local-cpus",
        type=_positive,
        default=None,
        metavar="N",
        help="CPUs of a locally started Ray (without ADDRESS). Default: all of this machine's",
    )
    add_to(p, "--model-checks-shard-weights", type=Path, dest="weights")


def _positive(text: str) -> int:
    from model_checks.core.argtypes import positive_number

    return positive_number(int, "shards")(text)


def run(args: argparse.Namespace) -> int:
    from model_checks.cluster import ray as cluster
    from model_checks.cluster.plan import plan
    from model_checks.cluster.shard import ShardJob
    from model_checks.commands.merge import Lost, merge
    from model_checks.core.errors import ModelChecksError
    from model_checks.core.fileio import write_text

    for r in args.roots:
        if not r.is_dir():
            raise ModelChecksError(f"artifact root {r} is not a directory (from --model-checks)")
    ray = cluster.start(args.ray or None, args.local_cpus)
    count = args.shards or int(ray.cluster_resources().get("CPU", 1))
    plans = plan([r.absolute() for r in args.roots], count, args.weights, Path.cwd())
    env = {k: os.environ[k] for k in ("PYTHONPATH", "MODEL_CHECKS_WORKER_IMPORTS") if k in os.environ}
    roots = tuple(str(r.absolute()) for r in args.roots)
    weights = str(args.weights.absolute()) if args.weights else None

    def job(p):  # type: ignore[no-untyped-def]
        return ShardJob(os.getcwd(), roots, (p.index, p.count), tuple(args.pytest_args), weights, env)

    outcomes = cluster.run_shards(ray, plans, job)
    dirs, lost = [], []
    for o in outcomes:
        files = (o.result or {}).get("files", {})
        if o.result is not None and "summary.json" in files and "junit.xml" in files:
            d = args.out / "shards" / str(o.plan.index)
            for name, text in files.items():
                write_text(d / name, text)
            dirs.append(d)
        else:
            why = (
                o.lost
                or f"its gate exited {o.result['rc']} without reports: {o.result['output'].strip().splitlines()[-1:] or ''}"
            )
            lost.append(Lost((o.plan.index, o.plan.count), o.plan.ids, why))
    failed, written = merge(dirs, args.out, lost=tuple(lost))
    for p in written:
        print(f"model-checks run: wrote {p}")
    for x in lost:
        print(
            f"model-checks run: shard {x.shard[0]}/{x.shard[1]} lost ({x.reason}): {len(x.ids)} artifact(s) not checked",
            file=sys.stderr,
        )
    print(f"model-checks run: {len(plans)} shard(s) on Ray, {len(lost)} lost; {failed} artifact(s) failing or lost")
    return 1 if failed else 0
