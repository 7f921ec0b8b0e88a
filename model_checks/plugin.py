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
MARKERS = {
    "model_checks": "a built-in check of an artifact (selected with -m model_checks)",
    "cpu": "a latency/throughput budget measured on the CPU",
    "gpu": "a latency/throughput budget measured on a GPU; skips with a reason where there is none",
    "slow": "slower than the fast gate; left out of `make test`",
    "nightly": "runs in the nightly job: reports, matrices, long benchmarks",
    "fuzz": "long fuzzing runs; `make fuzz`",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup(GROUP, "model-checks: gate ML model artifacts (ONNX, TorchScript, Keras)")
    g.addoption("--model-checks", action="append", default=[], metavar="DIR", dest="model_checks_roots",
                help="check every artifact (a directory with metadata.yaml) under DIR; repeatable. Default: the ini option model_checks_roots")
    g.addoption("--model-checks-trust-code", action="store_true", default=False, dest="model_checks_trust_code",
                help="load formats that carry code (TorchScript, Keras .h5, SavedModel). Threat model: a model file from a pull "
                     "request can be a program; by default only data formats (ONNX, .npz without pickles, .keras in safe mode) are "
                     "loaded. Set this in CI only for trusted branches. Default: off")
    g.addoption("--model-checks-isolate", default="process", choices=("process", "off"), metavar="MODE", dest="model_checks_isolate",
                help="where models run: 'process' runs each framework in a worker process with a memory limit and a timeout, so "
                     "a model that segfaults, aborts, exhausts memory or hangs fails its own checks and the session goes on; "
                     "'off' runs them in the pytest process (a crash there ends the whole run). Default: process")
    g.addoption("--model-checks-worker-memory", default=DEFAULT_MEMORY_MB, type=_positive_number(int, "MiB"), metavar="MIB",
                dest="model_checks_worker_memory",
                help=f"address-space limit of each worker process, in MiB (RLIMIT_AS). Default: {DEFAULT_MEMORY_MB}")
    g.addoption("--model-checks-timeout", default=DEFAULT_TIMEOUT_S, type=_positive_number(float, "seconds"), metavar="SECONDS",
                dest="model_checks_timeout",
                help=f"longest a worker may take over one load or inference before it is killed. Default: {DEFAULT_TIMEOUT_S:g}")
    g.addoption("--model-checks-summary", default=None, metavar="PATH", dest="model_checks_summary",
                help="write a markdown summary (one row per artifact) to PATH. Default: none")
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


def _inside(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


def _session(config: pytest.Config):  # type: ignore[no-untyped-def]
    return config.stash.get(SESSION_KEY, None)


class ArtifactModule(pytest.Module):
    """A metadata.yaml collected as the gate's test module, bound to one artifact."""

    artifact: Any = None

    def _getobj(self):  # type: ignore[no-untyped-def]
        from model_checks import gate

        return gate

    def istestfunction(self, obj: object, name: str) -> bool:
        return name.startswith("test_") and callable(obj)

    def collect(self):  # type: ignore[no-untyped-def]
        from model_checks.checks import applicable

        wanted = {f"test_{c}" for c in applicable(self.artifact)}
        for item in super().collect():
            if getattr(item, "originalname", item.name) in wanted:
                item.add_marker(pytest.mark.model_checks)
                yield item


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name != "metadata.yaml":
        return None
    gs = _session(parent.config)
    if gs is None or not any(_inside(file_path, r) for r in gs.roots):
        return None
    artifact = gs.by_dir(Path(os.path.normpath(file_path.parent)))
    if artifact is None:
        return None
    mod = ArtifactModule.from_parent(parent, path=file_path)
    mod.artifact = artifact
    return mod


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "artifact" not in metafunc.fixturenames:
        return
    module = metafunc.definition.getparent(pytest.Module)
    if isinstance(module, ArtifactModule):
        arts = [module.artifact]
    else:
        gs = _session(metafunc.config)
        arts = [a for a in gs.artifacts if a.manifest is not None] if gs else []
    metafunc.parametrize("artifact", arts, ids=[a.id for a in arts], scope="function")


@pytest.fixture
def model_checks_verdict(request: pytest.FixtureRequest, artifact: Any):  # type: ignore[no-untyped-def]
    """`model_checks_verdict("equivalence")`: run a built-in check on this test's artifact."""
    gs = _session(request.config)

    def verdict(check: str):  # type: ignore[no-untyped-def]
        __tracebackhide__ = True
        return gs.verdict(check, artifact, request.node)

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
