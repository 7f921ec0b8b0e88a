"""The pytest plugin (entry point `pytest11: model_checks`). Thin: it parses options, finds artifacts,
collects the gate once per artifact and hands each test to the library. It imports no ML framework:
loading this plugin into any pytest run costs a few milliseconds."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import pytest

from model_checks.isolation.limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S

GROUP = "model-checks"
SESSION_KEY = pytest.StashKey["Any"]()
RELEASE_KEY = pytest.StashKey[dict]()
ITEM_KEY = pytest.StashKey[tuple]()  # (artifact, device) of a gate item
MARKERS = {
    "model_checks": "a built-in check of an artifact (selected with -m model_checks)",
    "cpu": "a latency/throughput budget measured on the CPU",
    "gpu": "a latency/throughput budget measured on a GPU; skips with a reason where there is none",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup(GROUP, "model-checks: gate ML model artifacts (ONNX, TorchScript, Keras)")
    g.addoption("--model-checks", action="append", default=[], metavar="DIR", dest="model_checks_roots",
                help="check every artifact (a directory with metadata.yaml) under DIR; repeatable. Nothing under DIR is ever "
                     "imported or run by pytest (a conftest.py or test file there is ignored with a warning). Default: the ini "
                     "option model_checks_roots, gated when pytest is given no paths or a path that overlaps a root")
    g.addoption("--model-checks-trust-code", action="store_true", default=False, dest="model_checks_trust_code",
                help="load formats that carry code: TorchScript archives and pickled .pt files, Keras .h5 (Lambda layers hold "
                     "bytecode), SavedModel. Threat model: artifacts come from pull requests, some from strangers, and a model "
                     "file can be a program that runs when it loads. Untrusted, only data formats are loaded (ONNX, .npz with "
                     "pickles refused, .keras in safe mode without custom objects), judged by content, not name; every path stays "
                     "inside the artifacts root. Set this only in CI jobs for trusted branches. Default: off")
    g.addoption("--model-checks-isolate", default="process", choices=("process", "off"), metavar="MODE", dest="model_checks_isolate",
                help="where models run: 'process' runs each framework in a worker process with a memory limit and a timeout, so "
                     "a model that segfaults, aborts, exhausts memory or hangs fails its own checks and the session goes on; "
                     "'off' runs them in the pytest process (a crash there ends the whole run). Default: process")
    g.addoption("--model-checks-worker-memory", default=DEFAULT_MEMORY_MB, type=_positive_number(int, "MiB"), metavar="MIB",
                dest="model_checks_worker_memory",
                help=f"memory limit of each worker process, in MiB (RLIMIT_DATA: heap and anonymous mappings). Default: {DEFAULT_MEMORY_MB}")
    g.addoption("--model-checks-timeout", default=DEFAULT_TIMEOUT_S, type=_positive_number(float, "seconds"), metavar="SECONDS",
                dest="model_checks_timeout",
                help=f"longest a worker may take over one load or inference before it is killed. Default: {DEFAULT_TIMEOUT_S:g}")
    g.addoption("--model-checks-summary", default=None, metavar="PATH", dest="model_checks_summary",
                help="write a markdown summary (one row per artifact) to PATH. Default: none")
    g.addoption("--model-checks-baselines", default=None, metavar="DIR", dest="model_checks_baselines",
                help="where budget baselines are stored and compared with (one JSON per artifact, check and device). "
                     "Default: .benchmarks/model-checks-baselines under the rootdir")
    g.addoption("--model-checks-update-baselines", action="store_true", default=False, dest="model_checks_update_baselines",
                help="replace the stored baselines with this run's figures; without it baselines never change. Default: off")
    g.addoption("--model-checks-min-effect", default=0.05, type=_fraction, metavar="PCT", dest="model_checks_min_effect",
                help="smallest slowdown against the baseline that counts as a regression (it must also be significant), "
                     "as '5%%' or 0.05. Default: 5%%")
    g.addoption("--model-checks-latency-claim-factor", default=3.0, type=_non_negative_float, metavar="X", dest="model_checks_latency_claim_factor",
                help="how far the p50 measured by test_latency[<id>-cpu] may sit from the manifest's latency_ms claim, either way "
                     "(another machine, not another model); 0 reports the claim without gating it. Default: 3")
    g.addoption("--model-checks-nightly-report", default=None, metavar="DIR", dest="model_checks_nightly_report",
                help="write nightly.md and nightly.html (figures, change against baseline, plots over stored runs) to DIR. "
                     "Default: none")
    parser.addini("model_checks_roots", type="paths", default=[],
                  help="artifact roots gated when --model-checks is not given, whatever testpaths says, unless pytest is given "
                       "paths that do not overlap them")


def _positive_number(kind: type, unit: str):  # type: ignore[no-untyped-def]
    def parse(text: str):  # type: ignore[no-untyped-def]
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of {unit}")
        return value

    parse.__name__ = unit
    return parse


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction in [0, 1) such as 5% or 0.05")
    return value


def _isolation(config: pytest.Config):  # type: ignore[no-untyped-def]
    if config.getoption("model_checks_isolate") == "off":
        return None
    from model_checks.isolation.limits import Limits

    return Limits(memory_mb=config.getoption("model_checks_worker_memory"), timeout_s=config.getoption("model_checks_timeout"))


def _every_root(config: pytest.Config, cli: list) -> list[Path]:
    """Every root this run could gate (from the command line and the ini), before deciding which are."""
    from model_checks.plugin.roots import unique

    return unique([Path(p) for p in cli] + [Path(p) for p in config.getini("model_checks_roots")])


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """pytest imports the conftest.py of every path it is given before any collection starts; a path inside an
    artifact root is taken off that list here, so `pytest artifacts --model-checks artifacts` imports nothing
    from the tree (the gate collects it on its own, see `_Gate`)."""
    ns = early_config.known_args_namespace
    roots = _every_root(early_config, getattr(ns, "model_checks_roots", None) or [])
    if not roots:
        return
    paths = getattr(ns, "file_or_dir", None)
    if paths:
        ns.file_or_dir = [a for a in paths if not _arg_in_roots(early_config, a, roots)]
    # pytest also imports the conftest.py of every `test*` folder beside the paths it starts from (a root named
    # `testdata/`). No public API says "not there"; marking the root's folder as already searched does
    # (private, guarded, and pinned by tests/plugin/test_good_citizen.py to the pytest versions it was checked with).
    searched = getattr(early_config.pluginmanager, "_dirpath2confmods", None)
    if isinstance(searched, dict):
        for r in roots:
            searched.setdefault(r, [])


def _arg_path(config: pytest.Config, arg: str) -> Path:
    return Path(os.path.normpath(config.invocation_params.dir / str(arg).split("::")[0]))


def _arg_in_roots(config: pytest.Config, arg: str, roots: list[Path]) -> bool:
    from model_checks.plugin.roots import inside

    return any(inside(_arg_path(config, arg), r) for r in roots)


def _gated_roots(config: pytest.Config) -> list[Path]:
    """--model-checks roots; else the ini's, when pytest is given no paths (testpaths or not) or a path that
    overlaps one of them (`pytest tests` in a repository with ini roots runs its tests only)."""
    from model_checks.plugin.roots import inside, unique

    cli = config.getoption("model_checks_roots")
    if cli:
        return unique(Path(p) for p in cli)
    ini = unique(Path(p) for p in config.getini("model_checks_roots"))
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return ini
    paths = [_arg_path(config, a) for a in config.args]
    return [r for r in ini if any(inside(r, p) or inside(p, r) for p in paths)]


def pytest_configure(config: pytest.Config) -> None:
    """Without artifact roots the plugin does nothing beyond its options: no marker, no hook, no report."""
    roots = _gated_roots(config)
    if not roots:
        return
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    from model_checks.core.session import GateSession

    config.stash[SESSION_KEY] = GateSession(roots=roots, trust_code=config.getoption("model_checks_trust_code"), isolation=_isolation(config),
                                           rootdir=config.rootpath)
    every = _every_root(config, config.getoption("model_checks_roots"))
    # Paths inside a root are never handed to pytest's Python collection: they narrow what the gate runs instead.
    selectors = [a for a in config.args if _arg_in_roots(config, a, every)]
    config.args[:] = [a for a in config.args if a not in selectors]
    config.pluginmanager.register(_Gate(config, selectors), "model_checks_gate")
    controller = not hasattr(config, "workerinput")
    if config.getoption("model_checks_summary") and controller:
        from model_checks.plugin.summary import SummaryReport

        config.pluginmanager.register(SummaryReport(Path(config.getoption("model_checks_summary"))), "model_checks_summary")
    if config.pluginmanager.has_plugin("benchmark"):
        from model_checks.plugin.benchmark import BenchmarkHooks

        config.pluginmanager.register(BenchmarkHooks(), "model_checks_benchmark")
    nightly = config.getoption("model_checks_nightly_report")
    if nightly and controller:
        from model_checks.plugin.nightly import NightlyReport

        config.pluginmanager.register(NightlyReport(config.rootpath / nightly, config), "model_checks_nightly")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    """The one word the plugin says without roots: when nothing was collected at all, where the gate looks."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and _session(config) is None:
        terminalreporter.write_line(f"model-checks: gated nothing ({NO_ROOTS})")


def _session(config: pytest.Config):  # type: ignore[no-untyped-def]
    return config.stash.get(SESSION_KEY, None)


class ModelChecksWarning(pytest.PytestWarning):
    """Something under an artifact root the gate ignored on purpose (a Python file pytest would have imported)."""


class _Gate:
    """The gate's hooks, registered only when the run has artifact roots.

    Artifacts are collected here, not by pytest walking the roots: pytest imports every conftest.py and test
    file of a directory it collects, so a conftest.py beside a failing model could make it pass. The gate's
    nodes hang off the session with their node id taken from the manifest's path, and with the rootdir as
    their `path`, so the conftest.py files pytest consults for them are the rootdir's, which it has loaded
    anyway; a Python file under a root is never imported and gets a warning."""

    def __init__(self, config: pytest.Config, selectors: list[str]):
        self.config = config
        self.gs = config.stash[SESSION_KEY]
        self.saved: dict[tuple, int] = {}  # (artifact, check, device) -> sessions its saved baseline pools
        self.selectors = [self._nodeid(_arg_path(config, a), a.partition("::")[2]) for a in selectors]

    def _nodeid(self, path: Path, rest: str) -> str:
        """The node id of a manifest (or a selector naming one), its directory names escaped: they head every
        line of the log about the artifact, so a name from a pull request can never start a line or colour it."""
        from model_checks.safety.text import printable
        from model_checks.plugin.roots import inside

        rel = path.relative_to(self.config.rootpath).as_posix() if inside(path, self.config.rootpath) else path.as_posix()
        return printable(f"{rel}::{rest}" if rest else rel)

    @staticmethod
    def _matches(selector: str, nodeid: str) -> bool:
        """Whether a path or node id given to pytest (`arts/cnn`, `arts/cnn/metadata.yaml::test_limits`) selects `nodeid`."""
        if selector == ".":
            return True
        if "::" in selector:
            return nodeid == selector or nodeid.startswith(selector + "[") or nodeid.startswith(selector + "::")
        return nodeid.startswith(selector + ("::" if selector.endswith(".yaml") else "/"))

    def _selected(self, nodeid: str) -> bool:
        return not self.selectors or any(self._matches(s, nodeid) for s in self.selectors)

    def pytest_report_header(self, config: pytest.Config) -> str:
        from model_checks.plugin.roots import display

        n = len(self.gs.artifacts)
        where = ", ".join(display(r, config.rootpath) for r in self.gs.roots)
        trust = "on" if config.getoption("model_checks_trust_code") else "off"
        return f"model-checks: {n} artifact{'s' if n != 1 else ''} under {where} (isolate={config.getoption('model_checks_isolate')}, trust-code={trust})"

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from model_checks.plugin.roots import display, inside, no_artifact_message

        for r in self.gs.roots:
            if not r.is_dir():
                raise pytest.UsageError(f"model-checks: artifact root {display(r, self.config.rootpath)} is not a directory "
                                        "(from --model-checks or model_checks_roots)")
        # A conftest.py pytest imported at startup, before this plugin could step in (a root named test* below a
        # path pytest was given): its code has run, so the run is refused rather than trusted.
        for plugin in self.config.pluginmanager.get_plugins():
            f = getattr(plugin, "__file__", None)
            if f and any(inside(Path(f), r) for r in self.gs.roots):
                raise pytest.UsageError(f"model-checks: pytest imported {display(Path(f), self.config.rootpath)} from inside an artifact root "
                                        "at startup (a folder named test* below a path it was given); nothing under a root may run: "
                                        "remove the file or rename the folder")
        found = {a.root for a in self.gs.artifacts}
        empty = [r for r in self.gs.roots if r not in found]
        if empty:
            raise pytest.UsageError("\n".join(no_artifact_message(r, self.config.rootpath) for r in empty))

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        from model_checks.plugin.roots import inside

        p = Path(os.path.normpath(collection_path))
        return True if any(inside(p, r) for r in self.gs.roots) else None

    @pytest.hookimpl(tryfirst=True)  # before -k / -m deselect, so they apply to the gate's tests too
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
        self._warn_python_files(config)
        hook = config.hook
        for art in self.gs.artifacts:
            nodeid = self._nodeid(art.manifest_path, "")
            mod = ArtifactModule.from_parent(session, path=config.rootpath, name=art.id, nodeid=nodeid)
            mod.artifact = art
            new = [i for i in mod.collect() if self._selected(i.nodeid)]
            if not new:
                continue
            hook.pytest_collectstart(collector=mod)
            for item in new:
                hook.pytest_itemcollected(item=item)
            hook.pytest_collectreport(report=pytest.CollectReport(nodeid, "passed", None, new))
            items.extend(new)
        unmatched = [s for s in self.selectors if not any(self._matches(s, i.nodeid) for i in items)]
        if unmatched:
            raise pytest.UsageError(f"model-checks: not found: {', '.join(unmatched)} (no artifact check there; "
                                    f"{len(self.gs.artifacts)} artifact(s) under {', '.join(str(r) for r in self.gs.roots)})")

    def _warn_python_files(self, config: pytest.Config) -> None:
        import warnings

        from model_checks.plugin.roots import display, python_files

        for r in self.gs.roots:
            files = python_files(r, config.getini("python_files"))
            if files:
                names = ", ".join(display(f, config.rootpath) for f in files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
                warnings.warn(ModelChecksWarning(f"model-checks: ignored {len(files)} Python file(s) under the artifact root "
                                                 f"{display(r, config.rootpath)}: {names}. Nothing under a root is imported or run; "
                                                 "tests of artifacts belong outside it (take the model_checks_artifact fixture)"))

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """A user's test that takes `model_checks_artifact` runs once per valid artifact (the gate's items carry theirs)."""
        if "model_checks_artifact" not in metafunc.fixturenames:
            return
        arts = [a for a in self.gs.artifacts if a.manifest is not None]
        if "model_checks_device" in metafunc.fixturenames:
            metafunc.parametrize(("model_checks_artifact", "model_checks_device"), _device_params(arts), scope="function")
            return
        metafunc.parametrize("model_checks_artifact", arts, ids=[a.id for a in arts], scope="function")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Plan releases: each model is released after the last test that may need it."""
        last: dict[Path, str] = {}
        for item in session.items:
            art = _artifact_of(item)
            if art is not None:
                for p in self.gs.models_of(art):
                    last[p] = item.nodeid
        plan: dict[str, list[Path]] = {}
        for p, nodeid in last.items():
            plan.setdefault(nodeid, []).append(p)
        session.config.stash[RELEASE_KEY] = plan

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        for p in item.config.stash.get(RELEASE_KEY, {}).get(item.nodeid, []):
            self.gs.pool.release(p)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.gs.pool.close()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from model_checks.core.session import read_record

        p = read_record(report.user_properties) if report.when == "call" else None
        if p and p["figures"].get("baseline_sessions"):
            self.saved[(p["artifact"], p["check"], p["figures"].get("device"))] = int(p["figures"]["baseline_sessions"])

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        """What --model-checks-update-baselines stored, and how many more sessions a verdict needs."""
        if not self.saved:
            return
        from model_checks.checks.budgets.baseline import MIN_SESSIONS

        where = self.config.getoption("model_checks_baselines") or ".benchmarks/model-checks-baselines"
        terminalreporter.write_line(f"model-checks: saved {len(self.saved)} baseline(s) to {where}:")
        for (aid, check, device), n in sorted(self.saved.items()):
            more = MIN_SESSIONS - n
            needs = f"{more} more session(s) before it can call a regression" if more > 0 else "ready to compare"
            terminalreporter.write_line(f"  {check} of {aid} on {device}: {n} session(s) pooled, {needs}")


class CheckItem(pytest.Function):
    """One built-in check of one artifact. Its location is the artifact's metadata.yaml, so a skip in the short
    summary points at the artifact it concerns, not at the gate's test function."""

    def reportinfo(self):  # type: ignore[no-untyped-def]
        from model_checks.safety.text import printable

        # relative to where pytest was started, so a skip's location in junit.xml names no checkout directory;
        # escaped, since skips and the short summary print it
        return printable(os.path.relpath(self.parent.artifact.manifest_path, self.config.invocation_params.dir)), 0, self.name


class ArtifactModule(pytest.Module):
    """One artifact, collected as the gate's test module (`model_checks.plugin.gate`); see `_Gate` for its path."""

    artifact: Any = None

    def _getobj(self):  # type: ignore[no-untyped-def]
        from model_checks.plugin import gate

        return gate

    def collect(self):  # type: ignore[no-untyped-def]
        # Items are built directly, one per applicable check (and device), in the registry's order:
        # pytest's per-function parametrization machinery, run once per artifact, was most of the time
        # collecting 1,000 artifacts took (bench/collect.py). The item carries its artifact and device,
        # which the `model_checks_artifact` and `model_checks_device` fixtures hand to the test.
        from model_checks.checks import applicable

        art = self.artifact
        no_benchmark = None if self.config.pluginmanager.hasplugin("benchmark") else pytest.mark.skip(
            reason="pytest-benchmark is disabled (-p no:benchmark): budgets are measured through its benchmark fixture")
        for check in applicable(art):
            name = f"test_{check}"
            fn = getattr(self.obj, name, None)
            if fn is None:
                continue
            for device, marks in _devices(art, check):
                # pytest 9 builds a node id from originalname + callspec; with neither, from the full name
                item = CheckItem.from_parent(self, name=f"{name}[{art.id}{'-' + device if device else ''}]", callobj=fn)
                item.stash[ITEM_KEY] = (art, device)
                for mark in (pytest.mark.model_checks, *marks, *([no_benchmark] if device and no_benchmark else [])):
                    item.add_marker(mark)
                yield item


def _devices(artifact: Any, check: str) -> list[tuple[str | None, list]]:
    """[(None, [])] for a check that runs once; one (device, marks) per device for a budget check."""
    from model_checks.checks.budgets.spec import CHECK_KEYS, devices_for

    if check not in CHECK_KEYS:
        return [(None, [])]
    return [(d, [getattr(pytest.mark, d)]) for d in devices_for(artifact.manifest, check)]


def _device_params(arts: list) -> list:
    """For a user's test taking `model_checks_device`: (artifact, device) for each device any budget of the
    artifact declares, id `<id>-<device>`, marked with the device's marker (cpu, gpu)."""
    from model_checks.checks.budgets.spec import CHECK_KEYS, devices_for

    params = []
    for a in arts:
        devices = sorted({d for c in CHECK_KEYS for d in devices_for(a.manifest, c)})
        params += [pytest.param(a, d, id=f"{a.id}-{d}", marks=[getattr(pytest.mark, d)]) for d in devices]
    return params


NO_ROOTS = "no artifact roots: pass --model-checks DIR or set model_checks_roots in the ini file"


def _item_param(request: pytest.FixtureRequest, index: int, name: str) -> Any:
    if ITEM_KEY in request.node.stash:
        return request.node.stash[ITEM_KEY][index]
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and name in callspec.params:
        return callspec.params[name]
    pytest.skip(NO_ROOTS)


@pytest.fixture
def model_checks_artifact(request: pytest.FixtureRequest) -> Any:
    """The artifact a test checks: a test of yours that takes it runs once per artifact under the gated roots."""
    return _item_param(request, 0, "model_checks_artifact")


@pytest.fixture
def model_checks_device(request: pytest.FixtureRequest) -> str:
    """The device ("cpu" or "gpu") a budget test measures on."""
    return _item_param(request, 1, "model_checks_device")


@pytest.fixture
def model_checks_verdict(request: pytest.FixtureRequest, model_checks_artifact: Any):  # type: ignore[no-untyped-def]
    """`model_checks_verdict("equivalence")`: run a built-in check on this test's artifact."""
    gs = _session(request.config)

    def verdict(check: str):  # type: ignore[no-untyped-def]
        __tracebackhide__ = True
        return gs.verdict(check, model_checks_artifact, request.node)

    return verdict


@pytest.fixture
def model_checks_budget(request: pytest.FixtureRequest, model_checks_artifact: Any, model_checks_device: str):  # type: ignore[no-untyped-def]
    """`model_checks_budget("latency", benchmark)`: measure a budget of this test's artifact on its device through
    pytest-benchmark's `benchmark` fixture, and gate it."""
    gs = _session(request.config)
    from model_checks.checks.budgets.check import BudgetOptions, run

    opt = request.config.getoption
    options = BudgetOptions(baselines=Path(opt("model_checks_baselines") or request.config.rootpath / ".benchmarks" / "model-checks-baselines"),
                            update_baselines=opt("model_checks_update_baselines"), min_effect=opt("model_checks_min_effect"),
                            trust_code=opt("model_checks_trust_code"), latency_claim_factor=opt("model_checks_latency_claim_factor"),
                            timeout_s=opt("model_checks_timeout"))

    def verdict(check: str, benchmark: Any):  # type: ignore[no-untyped-def]
        __tracebackhide__ = True
        return gs.verdict(check, model_checks_artifact, request.node, run=lambda ctx: run(check, ctx, model_checks_device, benchmark, options),
                          benchmark=benchmark)

    return verdict


@pytest.fixture(scope="session")
def model_checks_session(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """The gate's session state: roots, discovered artifacts and the shared model pool."""
    gs = _session(request.config)
    if gs is None:
        pytest.skip(NO_ROOTS)
    return gs


def _artifact_of(item: pytest.Item) -> Any:
    if ITEM_KEY in item.stash:
        return item.stash[ITEM_KEY][0]
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("model_checks_artifact") if callspec else None
