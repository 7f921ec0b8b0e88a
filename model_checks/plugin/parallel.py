"""pytest-xdist glue (registered only when xdist is loaded): the artifact-aware scheduler, one GPU per worker,
and the model-load count each worker reports back. The groups themselves are `core.shards`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any

import pytest

from model_checks.plugin.state import SESSION_KEY, options

LOADS_KEY = "model_checks_loads"  # in a worker's workeroutput: {model path: loads}
_PARAM = re.compile(r"\[(?P<id>.+?)(?:-(?:cpu|gpu))?\]$")


def gpu_count() -> int:
    """GPUs the driver lists (`nvidia-smi -L`), without importing a framework; 0 where there is none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def worker_gpu(worker: str, outer: str | None, count: int) -> str | None:
    """The CUDA_VISIBLE_DEVICES of xdist worker `gwN`: the N-th (round robin) of the outer mask when one is set
    (device ids or UUIDs, as given), else of the `count` GPUs; None (leave it alone) where there is no GPU."""
    m = re.fullmatch(r"gw(\d+)", worker)
    if m is None:
        return None
    visible = (
        [d.strip() for d in outer.split(",") if d.strip()] if outer is not None else [str(i) for i in range(count)]
    )
    if outer is not None and not visible:
        return outer  # an empty mask hides every GPU: keep it so
    return visible[int(m[1]) % len(visible)] if visible else None


class Parallel:
    """The xdist hooks of a gated run (controller and workers)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.loads: dict[str, int] = {}
        self.workers = 0

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        worker = getattr(config, "workerinput", {}).get("workerid")
        if worker is None:
            return
        # before any check can start CUDA (workers and their model processes inherit the environment)
        mask = worker_gpu(
            worker, os.environ.get("CUDA_VISIBLE_DEVICES"), 0 if "CUDA_VISIBLE_DEVICES" in os.environ else gpu_count()
        )
        if mask is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = mask

    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.option.dist != "load" or options(config).dist != "artifact":
            return None
        return _scheduler_class()(config, log)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        out = getattr(session.config, "workeroutput", None)
        if out is not None:
            out[LOADS_KEY] = {str(p): n for p, n in session.config.stash[SESSION_KEY].pool.loads.items()}

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        self.workers += 1
        for p, n in (getattr(node, "workeroutput", None) or {}).get(LOADS_KEY, {}).items():
            self.loads[p] = self.loads.get(p, 0) + n


def load_line(loads: dict[Any, int], workers: int) -> str | None:
    """The terminal's account of model loads: how many models, how many loads, and which more than once."""
    if not loads:
        return None
    total = sum(loads.values())
    where = f" on {workers} worker(s)" if workers else ""
    again = sorted(str(p) for p, n in loads.items() if n > 1)
    tail = (
        "each once"
        if not again
        else f"{len(again)} more than once: {', '.join(os.path.basename(os.path.dirname(p)) for p in again[:5])}"
    )
    return f"model-checks: {len(loads)} model(s) loaded {total} time(s){where} ({tail})"


def scope_of(config: pytest.Config) -> tuple[dict[str, str], dict[str, float]]:
    """(manifest node id or artifact id -> scope, scope -> weight) of the gated artifacts, in the controller."""
    from model_checks.core.shards import groups, read_durations, weights

    gs_ = config.stash[SESSION_KEY]
    gate = config.pluginmanager.get_plugin("model_checks_gate")
    opts = options(config)
    arts = gs_.artifacts
    found = groups(arts, gs_.models_of)
    w = weights(found, read_durations(opts.shard_weights) if opts.shard_weights else None)
    by_id = {a.id: a for a in arts}
    scopes: dict[str, str] = {}
    weight: dict[str, float] = {}
    for n, g in enumerate(found):
        scope = f"model-checks group {n}"
        weight[scope] = w[n]
        for aid in g.ids:
            scopes[gate._nodeid(by_id[aid].manifest_path, "")] = scope
            scopes[aid] = scope
    return scopes, weight


def _scheduler_class() -> type:
    from xdist.scheduler import LoadScopeScheduling

    class ArtifactScheduling(LoadScopeScheduling):
        """xdist's LoadScope with one scope per artifact group (all checks of an artifact, its reference and the
        other variants of that reference, and user tests parametrized over them), heaviest group first. Node ids
        stay as in a serial run (unlike `--dist loadgroup`, which appends `@group`), so junit and the summary match."""

        def __init__(self, config: pytest.Config, log: Any = None):
            super().__init__(config, log)
            self.scopes, self.weight = scope_of(config)
            self._ordered = False

        def _split_scope(self, nodeid: str) -> str:
            head = nodeid.split("::", 1)[0]
            if head in self.scopes:
                return self.scopes[head]
            m = _PARAM.search(nodeid)
            if m and m["id"] in self.scopes:
                return self.scopes[m["id"]]
            return nodeid.rsplit("::", 1)[0]

        def _assign_work_unit(self, node: Any) -> None:
            if not self._ordered:  # the first assignment: the work queue is complete, order it by weight
                self._ordered = True
                items = sorted(self.workqueue.items(), key=lambda kv: -self.weight.get(kv[0], 0.0))
                self.workqueue.clear()
                self.workqueue.update(items)
            super()._assign_work_unit(node)

    return ArtifactScheduling
