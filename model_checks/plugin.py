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
    "serving": "the artifact behind its own inference service on loopback, load-tested (test_serving)",
    "slow": "slower than the fast gate; left out of `make test`",
    "nightly": "runs in the nightly job: reports, matrices, long benchmarks",
    "fuzz": "long fuzzing runs; `make fuzz`",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup(GROUP, "model-checks: gate ML model artifacts (ONNX, TorchScript, Keras)")
    g.addoption("--model-checks", action="append", default=[], metavar="DIR", dest="model_checks_roots",
                help="check every artifact (a directory with metadata.yaml) under DIR; repeatable. Default: the ini option model_checks_roots")
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
                     "Default: reports/ when -m selects nightly tests, else none")
    parser.addini("model_checks_roots", type="paths", default=[], help="artifact roots checked when --model-checks is not given")


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


def _selects_nightly(config: pytest.Config) -> bool:
    """Whether `-m` selects a test marked only `nightly` (so `-m nightly` writes the nightly report)."""
    expr = config.getoption("markexpr", "") or ""
    if "nightly" not in expr:
        return False
    from _pytest.mark.expression import Expression

    return Expression.compile(expr).evaluate(lambda name, **_: name == "nightly")


def _isolation(config: pytest.Config):  # type: ignore[no-untyped-def]
    if config.getoption("model_checks_isolate") == "off":
        return None
    from model_checks.isolation.limits import Limits

    return Limits(memory_mb=config.getoption("model_checks_worker_memory"), timeout_s=config.getoption("model_checks_timeout"))


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    cli = [Path(p) for p in config.getoption("model_checks_roots")]
    roots = cli or [Path(p) for p in config.getini("model_checks_roots")]
    if not roots:
        return
    for r in roots:
        if not r.is_dir():
            raise pytest.UsageError(f"--model-checks: {r} is not a directory")
    from model_checks.session import GateSession

    config.stash[SESSION_KEY] = GateSession(roots=[r.absolute() for r in roots], trust_code=config.getoption("model_checks_trust_code"),
                                           isolation=_isolation(config))
    args = [Path(a.split("::")[0]).absolute() for a in config.args]
    for r in cli:
        if not any(_inside(r.absolute(), a) for a in args):
            config.args.append(str(r))
    if config.getoption("model_checks_summary") and not hasattr(config, "workerinput"):
        from model_checks.report import SummaryReport

        config.pluginmanager.register(SummaryReport(Path(config.getoption("model_checks_summary"))), "model_checks_summary")
    if config.pluginmanager.has_plugin("benchmark"):
        from model_checks.budgets.hooks import BenchmarkHooks

        config.pluginmanager.register(BenchmarkHooks(), "model_checks_benchmark")
    nightly = config.getoption("model_checks_nightly_report") or ("reports" if _selects_nightly(config) else None)
    if nightly and not hasattr(config, "workerinput"):
        from model_checks.nightly.plugin import NightlyReport

        config.pluginmanager.register(NightlyReport(config.rootpath / nightly, config), "model_checks_nightly")


def _inside(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


def _session(config: pytest.Config):  # type: ignore[no-untyped-def]
    return config.stash.get(SESSION_KEY, None)


class CheckItem(pytest.Function):
    """One built-in check of one artifact. Its location is the artifact's metadata.yaml, so a skip in the short
    summary points at the artifact it concerns, not at the gate's test function."""

    def reportinfo(self):  # type: ignore[no-untyped-def]
        return self.path, 0, self.name


class ArtifactModule(pytest.Module):
    """A metadata.yaml collected as the gate's test module, bound to one artifact."""

    artifact: Any = None

    def _getobj(self):  # type: ignore[no-untyped-def]
        from model_checks import gate

        return gate

    def istestfunction(self, obj: object, name: str) -> bool:
        return name.startswith("test_") and callable(obj)

    def collect(self):  # type: ignore[no-untyped-def]
        # Items are built directly, one per applicable check (and device), in the registry's order:
        # pytest's per-function parametrization machinery, run once per artifact, was most of the time
        # collecting 1,000 artifacts took (bench/collect.py). The item carries its artifact and device,
        # which the `artifact` and `model_checks_device` fixtures hand to the test.
        from model_checks.checks import applicable

        self.session._fixturemanager.parsefactories(self)
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
    from model_checks.budgets.spec import CHECK_KEYS, devices_for

    if check not in CHECK_KEYS:
        return [(None, [])]
    return [(d, _device_marks(d)) for d in devices_for(artifact.manifest, check)]


def _device_marks(device: str) -> list:
    """A budget test is marked with its device's marker (cpu, gpu) and nightly."""
    return [getattr(pytest.mark, device), pytest.mark.nightly]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name != "metadata.yaml":
        return None
    gs = _session(parent.config)
    if gs is None or not any(_inside(file_path, r) for r in gs.roots):
        return None
    artifact = gs.by_dir(Path(os.path.normpath(file_path.parent)))
    if artifact is None:
        return None
    # Named by the artifact, not "metadata.yaml": `-k` matches the names of every node up the chain, so
    # `-k metadata` would select every check of every artifact. The node id still comes from the path.
    mod = ArtifactModule.from_parent(parent, path=file_path, name=artifact.id)
    mod.artifact = artifact
    return mod


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A user's own test that takes `artifact` runs once per artifact (the gate's items carry theirs)."""
    if "artifact" not in metafunc.fixturenames or isinstance(metafunc.definition.getparent(pytest.Module), ArtifactModule):
        return
    gs = _session(metafunc.config)
    arts = [a for a in gs.artifacts if a.manifest is not None] if gs else []
    if "model_checks_device" in metafunc.fixturenames:
        metafunc.parametrize(("artifact", "model_checks_device"), _device_params(arts), scope="function")
        return
    metafunc.parametrize("artifact", arts, ids=[a.id for a in arts], scope="function")


@pytest.fixture
def artifact(request: pytest.FixtureRequest) -> Any:
    """The artifact a gate test checks (a user's test gets it by parametrization, which overrides this)."""
    return request.node.stash[ITEM_KEY][0]


@pytest.fixture
def model_checks_device(request: pytest.FixtureRequest) -> str:
    """The device ("cpu" or "gpu") a budget test measures on."""
    return request.node.stash[ITEM_KEY][1]


def _device_params(arts: list) -> list:
    """For a user's test taking `model_checks_device`: (artifact, device) for each device any budget of the
    artifact declares, id `<id>-<device>`."""
    from model_checks.budgets.spec import CHECK_KEYS, devices_for

    params = []
    for a in arts:
        devices = sorted({d for c in CHECK_KEYS for d in devices_for(a.manifest, c)})
        params += [pytest.param(a, d, id=f"{a.id}-{d}", marks=_device_marks(d)) for d in devices]
    return params


@pytest.fixture
def model_checks_verdict(request: pytest.FixtureRequest, artifact: Any):  # type: ignore[no-untyped-def]
    """`model_checks_verdict("equivalence")`: run a built-in check on this test's artifact."""
    gs = _session(request.config)

    def verdict(check: str):  # type: ignore[no-untyped-def]
        __tracebackhide__ = True
        return gs.verdict(check, artifact, request.node)

    return verdict


@pytest.fixture
def model_checks_budget(request: pytest.FixtureRequest, artifact: Any, model_checks_device: str):  # type: ignore[no-untyped-def]
    """`model_checks_budget("latency", benchmark)`: measure a budget of this test's artifact on its device through
    pytest-benchmark's `benchmark` fixture, and gate it."""
    gs = _session(request.config)
    from model_checks.budgets.check import BudgetOptions, run

    opt = request.config.getoption
    options = BudgetOptions(baselines=Path(opt("model_checks_baselines") or request.config.rootpath / ".benchmarks" / "model-checks-baselines"),
                            update_baselines=opt("model_checks_update_baselines"), min_effect=opt("model_checks_min_effect"),
                            trust_code=opt("model_checks_trust_code"), latency_claim_factor=opt("model_checks_latency_claim_factor"))

    def verdict(check: str, benchmark: Any):  # type: ignore[no-untyped-def]
        __tracebackhide__ = True
        return gs.verdict(check, artifact, request.node, run=lambda ctx: run(check, ctx, model_checks_device, benchmark, options))

    return verdict


@pytest.fixture(scope="session")
def model_checks_session(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """The gate's session state: roots, discovered artifacts and the shared model pool."""
    gs = _session(request.config)
    if gs is None:
        pytest.skip("no artifact roots: pass --model-checks DIR or set model_checks_roots in the ini file")
    return gs


def pytest_collection_finish(session: pytest.Session) -> None:
    """Plan releases: each model is released after the last test that may need it."""
    gs = _session(session.config)
    if gs is None:
        return
    last: dict[Path, str] = {}
    for item in session.items:
        art = _artifact_of(item)
        if art is not None:
            for p in gs.models_of(art):
                last[p] = item.nodeid
    plan: dict[str, list[Path]] = {}
    for p, nodeid in last.items():
        plan.setdefault(nodeid, []).append(p)
    session.config.stash[RELEASE_KEY] = plan


def _artifact_of(item: pytest.Item) -> Any:
    if ITEM_KEY in item.stash:
        return item.stash[ITEM_KEY][0]
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("artifact") if callspec else None


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    gs = _session(item.config)
    if gs is None:
        return
    for p in item.config.stash.get(RELEASE_KEY, {}).get(item.nodeid, []):
        gs.pool.release(p)


def pytest_sessionfinish(session: pytest.Session) -> None:
    gs = _session(session.config)
    if gs is not None:
        gs.pool.close()
