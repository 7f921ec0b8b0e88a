"""The pytest plugin (entry point `pytest11: model_checks`): its hooks only. Thin: it reads the options, decides
which roots the run gates, and registers the gate's hooks (`collect.Gate`) and reporters for that run; without
roots it does nothing beyond registering its options. It imports no ML framework: loading it into any pytest run
costs a few milliseconds.

The pytest wing: `options` (flags, read once into Options), `collect` (artifact nodes and items, the run's hooks),
`fixtures`, `gate` (the test functions), `summary` and `nightly` (reporters), `benchmark` (pytest-benchmark hooks),
`state`."""

from __future__ import annotations

from model_checks.plugin import plainly  # noqa: F401 - first: the rest of the package is imported plainly

# isort: split
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from model_checks.plugin.collect import Gate, _arg_path
from model_checks.plugin.fixtures import (
    model_checks_artifact,
    model_checks_budget,
    model_checks_device,
    model_checks_session,
    model_checks_verdict,
)
from model_checks.plugin.options import Options, add_options
from model_checks.plugin.state import NO_ROOTS, OPTIONS_KEY, SESSION_KEY, session

if TYPE_CHECKING:
    from model_checks.core.session import GateSession

__all__ = [
    "model_checks_artifact",
    "model_checks_budget",
    "model_checks_device",
    "model_checks_session",
    "model_checks_verdict",
]

MARKERS = {
    "model_checks": "a built-in check of an artifact (selected with -m model_checks)",
    "cpu": "a latency/throughput budget measured on the CPU",
    "gpu": "a latency/throughput budget measured on a GPU; skips with a reason where there is none",
}  # and each check's own (`Check.markers`, e.g. serving)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    config = pluginmanager.get_plugin("pytestconfig")
    if config is not None:  # first: the spare's interpreter starts while the options are registered
        from model_checks.plugin import early

        early.launch(config)  # the spare's process, for a run that asks for the gate (see early)
    add_options(parser)


def _every_root(config: pytest.Config, cli: list) -> list[Path]:
    """Every root this run could gate (from the command line and the ini), before deciding which are."""
    ini = config.getini("model_checks_roots")
    if not cli and not ini:  # a run that gates nothing imports no more of the package (discovery, manifests)
        return []
    from model_checks.core.roots import unique

    return unique([Path(p) for p in cli] + [Path(p) for p in ini])


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


def _arg_in_roots(config: pytest.Config, arg: str, roots: list[Path]) -> bool:
    from model_checks.core.roots import inside

    return any(inside(_arg_path(config, arg), r) for r in roots)


def _gated_roots(config: pytest.Config) -> list[Path]:
    """--model-checks roots; else the ini's, when pytest is given no paths (testpaths or not) or a path that
    overlaps one of them (`pytest tests` in a repository with ini roots runs its tests only)."""
    cli, ini_roots = config.getoption("model_checks_roots"), config.getini("model_checks_roots")
    if not cli and not ini_roots:  # (as in _every_root)
        return []
    from model_checks.core.roots import inside, unique

    if cli:
        return unique(Path(p) for p in cli)
    ini = unique(Path(p) for p in ini_roots)
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return ini
    paths = [_arg_path(config, a) for a in config.args]
    return [r for r in ini if any(inside(r, p) or inside(p, r) for p in paths)]


def pytest_configure(config: pytest.Config) -> None:
    """Without artifact roots the plugin does nothing beyond its options: no marker, no hook, no report."""
    roots = _gated_roots(config)
    if not roots:
        return
    # checks before core.session (which takes `checks` from the package): in pytester's in-process runs a package
    # keeps the submodule of an earlier run as its attribute after sys.modules forgot it
    from model_checks.checks import registry
    from model_checks.core.errors import ModelChecksError
    from model_checks.core.session import GateSession

    opts = config.stash[OPTIONS_KEY] = Options.from_config(config)
    gs = config.stash[SESSION_KEY] = GateSession(
        roots=roots,
        trust_code=opts.trust_code,
        isolation=opts.isolation,
        rootdir=config.rootpath,
        localize=opts.localize,
        serving_caps=opts.serving_caps,
    )
    from model_checks.plugin import early

    launched = early.take(config)
    if _runs_tests(config) and gs.pool.workers is not None:
        gs.pool.workers.start_spare(launched)  # its start-up overlaps the rest of ours (see Workers.start_spare)
        if all(r.is_dir() for r in roots):  # (else sessionstart refuses the run)
            _give_spare(gs)  # now rather than at sessionstart: its runtime's import is the next thing it waits for
    elif launched is not None:
        from model_checks.isolation.workers import discard

        discard(launched)

    try:
        checks = registry()
    except ModelChecksError as e:  # a check listed without its declaration: a sentence, not a traceback
        raise pytest.UsageError(f"model-checks: {e}") from None
    for name, text in [*MARKERS.items(), *(m for c in checks.values() for m in c.markers)]:
        config.addinivalue_line("markers", f"{name}: {text}")
    every = _every_root(config, config.getoption("model_checks_roots"))
    # Paths inside a root are never handed to pytest's Python collection: they narrow what the gate runs instead.
    selectors = [a for a in config.args if _arg_in_roots(config, a, every)]
    config.args[:] = [a for a in config.args if a not in selectors]
    config.pluginmanager.register(Gate(config, selectors), "model_checks_gate")
    controller = not hasattr(config, "workerinput")
    if config.pluginmanager.hasplugin("xdist"):
        from model_checks.plugin.parallel import Parallel

        config.pluginmanager.register(Parallel(config), "model_checks_parallel")
    if opts.summary and controller:
        from model_checks.plugin.summary import SummaryReport

        config.pluginmanager.register(SummaryReport(opts.summary, shard=opts.shard), "model_checks_summary")
    if config.pluginmanager.has_plugin("benchmark"):
        from model_checks.plugin.benchmark import BenchmarkHooks

        config.pluginmanager.register(BenchmarkHooks(), "model_checks_benchmark")
    if opts.nightly_report and controller:
        from model_checks.plugin.nightly import NightlyReport

        config.pluginmanager.register(NightlyReport(opts.nightly_report, config), "model_checks_nightly")


def _runs_tests(config: pytest.Config) -> bool:
    """Whether this process will run the gate's items: not a listing (--collect-only, --fixtures, --markers, --help,
    --version) and not xdist's controller, whose workers run them."""
    o = config.option
    if any(getattr(o, flag, False) for flag in ("collectonly", "showfixtures", "show_fixtures_per_test", "markers")):
        return False
    if getattr(o, "help", False) or getattr(o, "version", False):
        return False
    return hasattr(config, "workerinput") or getattr(o, "dist", "no") == "no"


@pytest.hookimpl(trylast=True)  # after the gate's own, which discovers the artifacts
def pytest_sessionstart(session: pytest.Session) -> None:
    """The spare worker (see pytest_configure, which gives it already where every root is a directory) goes to the
    framework of the first artifact the session may load, and imports its runtime while pytest collects; the other
    frameworks' workers start once collection is done, for the items selected (`collect.Gate._start_workers`)."""
    gs = session.config.stash.get(SESSION_KEY, None)
    if gs is not None:
        _give_spare(gs)


def _give_spare(gs: GateSession) -> None:
    if not gs.pool.spare_waiting or gs.pool.workers is None:
        return
    from model_checks.backends import require_trust_for

    for a in gs.artifacts:
        if a.format:
            try:
                require_trust_for(a.model_path, a.format, gs.pool.trust_code)
            except Exception:  # refused, or no model file: its checks say so
                continue
            gs.pool.workers.give_spare(a.format)
            return


def pytest_unconfigure(config: pytest.Config) -> None:
    """The workers stop with the run, also one that ended before its session did (a usage error, --help)."""
    gs = session(config)
    if gs is not None:
        gs.pool.close()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    """The one word the plugin says without roots: when nothing was collected at all, where the gate looks."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and session(config) is None:
        terminalreporter.write_line(f"model-checks: gated nothing ({NO_ROOTS})")
