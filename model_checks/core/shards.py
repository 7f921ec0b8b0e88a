"""Which artifacts run together: groups (an artifact with every artifact it shares a model with, so a reference
is loaded once for all its variants), their weights (the last run's durations, else model size) and dealing
groups into N shards. Used by the xdist scheduler, `--model-checks-shard K/N` and `model-checks run --ray`;
works without pytest."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from model_checks.core.errors import ModelChecksError
from model_checks.safety.text import printable

MAX_DURATIONS_BYTES = 256 * 1024**2
_CASE = re.compile(r"::test_\w+\[(?P<id>.+?)(?:-(?:cpu|gpu))?\]$")


@dataclass(frozen=True)
class Group:
    """Artifacts that share a model file (a reference and its variants), gated on one worker and in one shard."""

    ids: tuple[str, ...]  # artifact ids, in discovery order
    models: tuple[Path, ...]  # every model file they load

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size if p.is_file() else _tree_size(p) for p in self.models if p.exists())


def _tree_size(d: Path) -> int:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file())


def groups(artifacts: Sequence, models_of: Callable[[object], list[Path]]) -> list[Group]:
    """Connected components of artifacts linked by a shared model file (A's reference is B's file, or both
    reference the same model), in discovery order; an artifact with an invalid manifest is a group of its own."""
    parent = list(range(len(artifacts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[Path, int] = {}
    for i, art in enumerate(artifacts):
        for p in models_of(art):
            j = owner.setdefault(p, i)
            parent[find(i)] = find(j)
    members: dict[int, list[int]] = {}
    for i in range(len(artifacts)):
        members.setdefault(find(i), []).append(i)
    out = []
    for idx in sorted(members.values(), key=lambda m: m[0]):
        models = dict.fromkeys(p for i in idx for p in models_of(artifacts[i]))
        out.append(Group(tuple(artifacts[i].id for i in idx), tuple(models)))
    return out


def read_durations(path: Path) -> dict[str, float]:
    """Seconds per artifact id from a last run: pytest's junit XML (testcase `time`, summed per artifact) or a
    JSON object {artifact id: seconds}."""
    from model_checks.safety.files import read_regular_text

    text = read_regular_text(path, MAX_DURATIONS_BYTES, "durations file")
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise ModelChecksError(f"{path}: not a JSON object of artifact id -> seconds ({str(e)[:200]})") from None
        if not isinstance(data, dict):
            raise ModelChecksError(f"{path}: not a JSON object of artifact id -> seconds")
        bad = [
            k
            for k, v in data.items()
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v < float("inf")
        ]
        if bad:
            raise ModelChecksError(
                f"{path}: durations must be numbers of seconds >= 0; not so for {', '.join(map(repr, bad[:5]))}"
            )
        return {str(k): float(v) for k, v in data.items()}
    import xml.etree.ElementTree as ET

    if re.search(r"<!\s*(DOCTYPE|ENTITY)", text, re.IGNORECASE):
        raise ModelChecksError(f"{path}: holds a DTD (<!DOCTYPE or <!ENTITY); pytest's junit XML has none")
    try:
        tree = ET.fromstring(text)
    except ET.ParseError as e:
        raise ModelChecksError(f"{path}: neither JSON nor junit XML ({e})") from None
    out: dict[str, float] = {}
    for case in tree.iter("testcase"):
        m = _CASE.search(f"{case.get('classname', '')}::{case.get('name', '')}")
        if m:
            try:
                seconds = float(case.get("time") or 0.0)
            except ValueError:
                raise ModelChecksError(
                    f"{path}: testcase {printable(case.get('name', ''))[:80]!r}: time "
                    f"{printable(case.get('time', ''))[:40]!r} is not a number"
                ) from None
            out[m["id"]] = out.get(m["id"], 0.0) + max(0.0, seconds)
    return out


def weights(gs: Sequence[Group], durations: dict[str, float] | None = None) -> list[float]:
    """Each group's weight: the sum of its artifacts' last durations when given (an artifact missing there gets
    the mean of those found, so a new one is neither free nor dominant), else its models' size in bytes."""
    if not durations:
        return [float(max(g.size_bytes, 1)) for g in gs]
    known = [durations[i] for g in gs for i in g.ids if i in durations]
    mean = sum(known) / len(known) if known else 1.0
    return [sum(durations.get(i, mean) for i in g.ids) for g in gs]


def deal(gs: Sequence[Group], n: int, w: Sequence[float] | None = None) -> list[list[Group]]:
    """Groups into n shards, heaviest first onto the lightest shard (ties: the lower shard, then discovery
    order), so the result depends only on the groups and weights, the same on every CI job."""
    w = list(w) if w is not None else weights(gs)
    shards: list[list[Group]] = [[] for _ in range(n)]
    load = [0.0] * n
    for k in sorted(range(len(gs)), key=lambda k: (-w[k], k)):
        s = min(range(n), key=lambda s: (load[s], s))
        shards[s].append(gs[k])
        load[s] += w[k]
    order = {g.ids: k for k, g in enumerate(gs)}
    return [sorted(s, key=lambda g: order[g.ids]) for s in shards]


def shard_ids(gs: Sequence[Group], k: int, n: int, durations: dict[str, float] | None = None) -> set[str]:
    """The artifact ids of shard k (1-based) of n."""
    return {i for g in deal(gs, n, weights(gs, durations))[k - 1] for i in g.ids}
