"""A tree dealt into shards, each with what its task needs: `num_gpus=1` where an artifact has gpu budgets, a
whole node where one has cpu budgets (timings must not contend), else one CPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ShardPlan:
    index: int  # 1-based
    count: int
    ids: tuple[str, ...]
    gpu_budgets: bool
    cpu_budgets: bool

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"


def plan(
    roots: list[Path], count: int | None = None, durations_file: Path | None = None, rootdir: Path | None = None
) -> list[ShardPlan]:
    """The shards of the artifacts under `roots`, as `--model-checks-shard K/N` deals them (the same groups and
    weights, so each task's gate picks exactly its plan's artifacts). `count`: how many (default: one per group)."""
    from model_checks.checks.budgets.spec import CHECK_KEYS, devices_for
    from model_checks.core.session import GateSession
    from model_checks.core.shards import deal, groups, read_durations, weights

    gs = GateSession(roots=roots, rootdir=rootdir)
    found = groups(gs.artifacts, gs.models_of)
    n = max(1, min(count or len(found), len(found)))
    by_id = {a.id: a for a in gs.artifacts}
    out = []
    for k, shard in enumerate(
        deal(found, n, weights(found, read_durations(durations_file) if durations_file else None)), 1
    ):
        ids = tuple(i for g in shard for i in g.ids)
        devices = {d for i in ids for c in CHECK_KEYS for d in devices_for(by_id[i].manifest, c)}
        out.append(ShardPlan(k, n, ids, "gpu" in devices, "cpu" in devices))
    return out
