"""A check's result as a pytest outcome, and its facts and figures as the test's properties (junit, the
summary and the nightly report read them back, also from xdist workers)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pytest

from model_checks.safety.text import printable, terminal_lines

if TYPE_CHECKING:  # the plugin's import stays light: the library is loaded when a check first runs
    from model_checks.checks.context import CheckContext
    from model_checks.core.artifact import Artifact
    from model_checks.core.references import TestData
    from model_checks.core.results import CheckResult
    from model_checks.core.session import GateSession

PROPERTY = "model_checks"
_PREFIX, _SKIP = PROPERTY + ".", len(PROPERTY) + 1
FACTS = ("artifact", "dir", "check", "variant", "ok", "skipped", "reason", "format")
# What checks ask of the artifact's model in its worker first, in the order they ask: sent ahead once the
# manifest check has passed (see `_start_model`), for the checks of the artifact this run selected.
ASKS = {"integrity": ("validate", "facts", "load"), "metadata": ("facts",)}  # integrity: facts for sha256's files
PLAN_KEY = pytest.StashKey["_Plan"]()
# The next artifact's model is started on while this one's checks run (`_start_model`) only when its folder (the
# model, external weights, test data: `_small`) holds at most this much and no large model is held: a look-ahead
# never holds a second large model, nor makes the memory of the artifact before it, or a memory limit's verdict,
# depend on its neighbour.
LOOK_AHEAD_BYTES = 16 * 1024**2
LOOK_AHEAD_ENTRIES = 1000
# While the workers start (an interpreter, numpy, the runtime: the first artifact's checks wait on that), the gate's
# own process reads ahead what it will need of the artifacts after the next (`_prepare_ahead`): at most this much
# test data, held until their checks take it, and at most this many artifacts.
PREPARE_BYTES = 16 * 1024**2
PREPARE_ARTIFACTS = 256


def verdict(
    gs: GateSession,
    name: str,
    artifact: Artifact,
    item: pytest.Item | None = None,
    run: Callable[[CheckContext], CheckResult] | None = None,
    benchmark: object = None,
) -> CheckResult:
    """Run the check and let pytest decide: skip, pass, or fail with the check's own message."""
    __tracebackhide__ = True
    if name in _declared("timed"):
        gs.pool.quiet()
    result = gs.result(name, artifact, run)
    if result and item is not None and name == _first():
        _start_model(gs, artifact, item)
    if result.skipped and benchmark is not None:
        benchmark.skipped = True  # pytest-benchmark would warn that its fixture went unused
    record(item, artifact, result, gs.rootdir)
    peak = gs.pool.peak_memory_bytes()
    if item is not None and peak:  # the workers' peak resident memory since this artifact's first check
        item.user_properties.append((f"{PROPERTY}.worker_peak_rss_mb", round(peak / 1024**2, 1)))
    if result.skipped:
        # Reported at the item's location, the artifact's metadata.yaml, not at this line: pytest's skip has no
        # public way to say so (`_use_item_location`, private; pytest 8 and 9, pinned by tests/plugin).
        raise pytest.skip.Exception(printable(result.skipped), _use_item_location=True)
    if not result:
        # Messages quote runtimes, models and manifests: each line is made printable (an escape sequence, a
        # carriage return or a line break inside a quoted name shows as its escape, never acts on the terminal).
        pytest.fail(terminal_lines(str(result)), pytrace=False)
    return result


def _first() -> str:
    from model_checks.checks import FIRST

    return FIRST


class _Plan:
    """What the session's items ask of the workers, worked out once from `session.items`: the checks each artifact
    runs, and the artifacts whose models were started (`_start_model`, once an artifact)."""

    def __init__(self, session: pytest.Session) -> None:
        from model_checks.plugin.state import ITEM_KEY

        self.selected: dict[str, set[str]] = {}
        self.started: set[str] = set()
        self.after: dict[str, Artifact] = {}  # artifact id -> the artifact whose items come next in the run's order
        self.failed_first: set[str] = set()  # artifacts whose first check failed when run ahead (`_may_look_ahead`)
        self.small: dict[str, bool] = {}  # artifact id -> `_small`, measured once (ahead, then looked ahead at)
        # An xdist worker holds every item but runs those its controller sends, in an order only the controller
        # knows: the next in `session.items` is often another worker's, whose model this one would load for
        # nothing and hold to the end. No look-ahead there.
        ordered = not hasattr(session.config, "workerinput")
        last = None
        for i in session.items:
            if ITEM_KEY in i.stash:
                artifact = i.stash[ITEM_KEY][0]
                if ordered and artifact.id not in self.selected and last is not None:
                    self.after[last.id] = artifact
                self.selected.setdefault(artifact.id, set()).add(i.stash[ITEM_KEY][2])
                last = artifact


def _plan(item: pytest.Item) -> _Plan:
    plan = item.config.stash.get(PLAN_KEY, None)
    if plan is None:
        plan = item.config.stash[PLAN_KEY] = _Plan(item.session)
    return plan


def _start_model(gs: GateSession, artifact: Artifact, item: pytest.Item) -> None:
    """Have the worker start on what this artifact's selected checks will ask of its model first (ASKS), while
    pytest reports this item and sets up the next: their answers are then waiting, instead of a round trip each.
    Then on the next artifact's, while this one's checks run, where its manifest passes and its model is small
    (LOOK_AHEAD_BYTES): the worker's work for an artifact (checker, facts, load, test data) was otherwise waited on,
    most of a millisecond to several an artifact, with the gate's own process idle. At the session's first artifact,
    while the worker still starts, the gate's own part for the artifacts after that too (`_prepare_ahead`)."""
    plan = _plan(item)
    first = not plan.started
    _start(gs, plan, artifact)
    following = plan.after.get(artifact.id)
    if following is not None and following.id not in plan.started and _may_look_ahead(gs, plan, following):
        _start(gs, plan, following)
    if first and following is not None and gs.pool.isolation is not None:
        _prepare_ahead(gs, plan, plan.after.get(following.id))


def _prepare_ahead(gs: GateSession, plan: _Plan, artifact: Artifact | None) -> None:
    """At the session's first artifact, while its worker is still starting (importing its runtime, a fifth of a
    second or more) and the first checks would only wait on it: do now, for the artifacts after the next in the
    run's order, the gate's own part of what their model's start will need (the manifest check, whose passing result
    their test takes, and their test data, read), up to PREPARE_BYTES of test data and PREPARE_ARTIFACTS artifacts.
    The same work, done where the process would otherwise wait: with a worker that is already up, it is only done
    sooner. Only with workers (models run in this process have no start-up to overlap)."""
    from model_checks.core.session import TESTDATA_READER

    held = 0
    for _ in range(PREPARE_ARTIFACTS):
        if artifact is None or held > PREPARE_BYTES:
            return
        if (
            artifact.id not in plan.started
            and _may_look_ahead(gs, plan, artifact)
            and TESTDATA_READER in plan.selected.get(artifact.id, ())
        ):
            data = _testdata(gs, artifact)
            if data is not None:
                held += sum(int(a.nbytes) for _, ins, outs in data for _, a in (*ins, *outs))
        artifact = plan.after.get(artifact.id)


def _testdata(gs: GateSession, artifact: Artifact) -> TestData | None:
    """The artifact's reference test data, read and kept for its equivalence check (`GateSession.keep_testdata`),
    or as kept already; None when it has none, or it cannot be read (the check reads it again and says why)."""
    from model_checks.checks.context import CheckContext

    data = gs.kept_testdata(artifact)
    if data is None:
        try:
            data = CheckContext(artifact, gs.pool).read_testdata()
        except Exception:  # unreadable, refused: the check reads it again and says why
            return None
        if data is not None:
            gs.keep_testdata(artifact, data)
    return data


def _may_look_ahead(gs: GateSession, plan: _Plan, artifact: Artifact) -> bool:
    from model_checks.checks import get
    from model_checks.checks.context import CheckContext

    if artifact.id in plan.failed_first:
        return False
    try:
        ctx = CheckContext(artifact, gs.pool)
        if gs.kept_first(artifact) is None:
            first = get(_first()).run(ctx)
            if not first:  # its own check says why, when it runs
                plan.failed_first.add(artifact.id)
                return False
            gs.keep_first(artifact, first)  # and its test takes this result
        small = plan.small.get(artifact.id)
        if small is None:
            small = plan.small[artifact.id] = _small(ctx)
        return small and not gs.pool.holds_large()
    except Exception:  # an unsafe path, an unreadable file: left for its checks to say
        return False


def _small(ctx: CheckContext) -> bool:
    """Whether what a look-ahead reads and loads of an artifact holds at most LOOK_AHEAD_BYTES: everything under its
    model's folder (external weights may sit in a subfolder) and its ONNX test data sets, each file measured where a
    link leads (a link to a large file is the large file). A folder of more than LOOK_AHEAD_ENTRIES entries, or
    with a link leading out of the artifacts' root, is not looked ahead at either: measuring it would cost more
    than the look-ahead saves, or look outside the root (its checks say what they make of the link)."""
    import os

    from model_checks.safety.paths import leads_out

    model = ctx.model_path
    if not model.is_file():  # a folder (SavedModel, OpenVINO IR's pair is two files): not looked ahead
        return False
    data = ctx.reference_path if ctx.reference_kind == "testdata" else None
    todo = [model.parent, *([data] if data is not None and not data.is_relative_to(model.parent) else [])]
    seen: set[tuple[int, int]] = set()
    total = entries = 0
    while todo:
        folder = todo.pop()
        st = folder.stat()
        if (st.st_dev, st.st_ino) in seen:  # a link back up the tree
            continue
        seen.add((st.st_dev, st.st_ino))
        with os.scandir(folder) as listing:
            for e in listing:
                entries += 1
                if entries > LOOK_AHEAD_ENTRIES:
                    return False
                if e.is_symlink() and leads_out(ctx.artifact.root, e.path):
                    return False
                if e.is_dir():
                    todo.append(Path(e.path))
                elif e.is_file():
                    total += e.stat().st_size
                    if total > LOOK_AHEAD_BYTES:
                        return False
    return True


def _start(gs: GateSession, plan: _Plan, artifact: Artifact) -> None:
    checks = plan.selected.get(artifact.id, set())
    asked = {op for check in checks for op in ASKS.get(check, ())}
    if not asked or artifact.id in plan.started:
        return
    plan.started.add(artifact.id)
    from model_checks.checks.context import CheckContext
    from model_checks.core.errors import ModelChecksError
    from model_checks.core.session import TESTDATA_READER

    ctx = CheckContext(artifact, gs.pool)
    try:  # the arguments the checks will ask with
        path, fmt, root, names = ctx.model_path, ctx.fmt, artifact.root, ctx.names
    except ModelChecksError:  # no model to start on: the checks say why
        return
    cases = None
    if "load" in asked and TESTDATA_READER in checks:  # its test data read now, and run right behind the load
        data = _testdata(gs, artifact)
        if data is not None:
            cases = [ins for _, ins, _ in data]
    ops = tuple(op for op in ("validate", "facts", "load") if op in asked)
    gs.pool.prefetch(path, fmt, root, ops, names, cases)


def record(item: pytest.Item | None, artifact: Artifact, result: CheckResult, rootdir: Path | None = None) -> None:
    """Attach facts and figures to the running test: one property per fact and figure (`model_checks.check`,
    `model_checks.rel_l2`), the directory relative to the rootdir."""
    if item is None:
        return
    from model_checks.plugin.state import ITEM_KEY

    # the item's variant (`test_latency[<id>-cpu]`), also when the check ended before it could say; a budget's is its device
    variant = item.stash[ITEM_KEY][1] if ITEM_KEY in item.stash else None
    device = {"device": variant} if variant and item.stash[ITEM_KEY][2] in _declared("per_device") else {}
    figures = {**device, **{k: v for k, v in result.figures.items() if k not in FACTS}}
    facts = {
        "artifact": artifact.id,
        "dir": _dir_text(artifact.dir, rootdir),
        "check": result.check,
        "variant": variant,
        "ok": result.ok,
        "skipped": result.skipped,
        "reason": None if result or result.skipped else result.reason(artifact.id),
        "format": artifact.format,
        **figures,
    }
    if result.check in _declared("machine_dependent"):  # the machine's properties travel with its verdict
        from model_checks.core.machine import this_machine

        facts = {**this_machine().properties(), **facts}
    item.user_properties.extend((f"{PROPERTY}.{k}", _property_value(v)) for k, v in facts.items() if v is not None)


@lru_cache(maxsize=4096)
def _dir_text(where: Path, rootdir: Path | None) -> str:
    """An artifact's directory as its properties name it, relative to the rootdir when below it: worked out once an
    artifact, not again for each of its tests."""
    if rootdir is not None and where.is_relative_to(rootdir):
        where = where.relative_to(rootdir)
    return where.as_posix()


_DECLARED: dict[str, tuple[dict, frozenset[str]]] = {}  # flag -> (the registry it was read from, the checks)


def _declared(flag: str) -> frozenset[str]:
    """The checks whose declaration sets `flag` (per_device, machine_dependent, timed): read once from the registry, not
    for every test's properties (again when the registry is another, as a test that lists other checks makes it)."""
    from model_checks.checks import registry

    checks = registry()
    known = _DECLARED.get(flag)
    if known is None or known[0] is not checks:
        known = _DECLARED[flag] = (checks, frozenset(name for name, c in checks.items() if getattr(c, flag)))
    return known[1]


def _property_value(v: object) -> object:
    """A junit property value: numbers as they are, text escaped (a directory name or a skip reason from a pull
    request can hold a newline or an escape sequence), anything else as JSON."""
    if isinstance(v, (bool, int, float)):
        return v
    return printable(v if isinstance(v, str) else json.dumps(v, default=str))


def read_record(user_properties: list[tuple[str, object]]) -> dict | None:
    """The facts `record` attached to a test report, its figures under "figures"; None for a test of no artifact.
    A test that ran several checks keeps the last one's."""
    facts: dict = {}
    for key, value in user_properties:
        if key.startswith(_PREFIX):
            name = key[_SKIP:]
            if name == "artifact":
                facts = {}
            facts[name] = value
    if not facts:
        return None
    return {**{k: facts.get(k) for k in FACTS}, "figures": {k: v for k, v in facts.items() if k not in FACTS}}
