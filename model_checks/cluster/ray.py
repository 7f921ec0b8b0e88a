"""Shards as Ray tasks: each runs `shard.gate_shard` on a node with the resources its plan asks for, is retried
once when its worker or node dies, and is then reported as lost, never as passed. Imported only by
`model-checks run --ray`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from model_checks.cluster.plan import ShardPlan
from model_checks.cluster.shard import ShardJob, gate_shard
from model_checks.core.requires import require

RETRIES = 1  # a task whose worker or node dies runs once more, then its shard is lost


@dataclass(frozen=True)
class ShardOutcome:
    plan: ShardPlan
    result: dict | None  # gate_shard's answer; None when lost
    lost: str | None = None  # why


def resources(p: ShardPlan, node_cpus: float) -> dict[str, float]:
    """What a shard's task asks Ray for: a GPU for gpu budgets, a whole node's CPUs for cpu budgets, else one CPU."""
    return {"num_gpus": 1 if p.gpu_budgets else 0, "num_cpus": max(1.0, node_cpus) if p.cpu_budgets else 1}


def node_cpus(ray: Any) -> float:
    """The CPUs of the largest live node (a cpu-budget shard takes all of one)."""
    return max((n.get("Resources", {}).get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")), default=1.0)


LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def start(address: str | None, local_cpus: int | None = None) -> Any:
    """Ray, connected to `address` or started locally (the embedded default) when there is none."""
    if not address:
        # A local cluster listens on loopback only: Ray binds its node's address, which on Linux it takes to be the
        # machine's reachable one (every port then open to the network) unless clusters are off, as on macOS.
        os.environ[LOOPBACK_ENV] = "0"  # read when ray is imported, here and in the processes it starts
    ray = require("ray", "ray", "model-checks run --ray")
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kw["address"] = address
        else:
            import ray._private.ray_constants as constants  # checked with ray 2.60

            constants.ENABLE_RAY_CLUSTER = False  # when ray was imported before the variable was set
            if local_cpus:
                kw["num_cpus"] = local_cpus
        ray.init(**kw)
    return ray


def run_shards(
    ray: Any,
    plans: list[ShardPlan],
    job: Callable[[ShardPlan], ShardJob],
    body: Callable[[ShardJob], dict] = gate_shard,
) -> list[ShardOutcome]:
    """Run every plan's job as a Ray task and wait for all; a task that fails twice (its worker or node died, or
    `body` raised) is lost, with the reason."""
    task = ray.remote(max_retries=RETRIES, retry_exceptions=False)(body)
    cpus = node_cpus(ray)
    refs = [task.options(**resources(p, cpus)).remote(job(p)) for p in plans]
    out = []
    for p, ref in zip(plans, refs):
        try:
            out.append(ShardOutcome(p, ray.get(ref)))
        except ray.exceptions.RayError as e:
            first = (str(e).strip().splitlines() or [""])[0]
            out.append(ShardOutcome(p, None, f"{type(e).__name__}: {first}"[:300]))
    return out
