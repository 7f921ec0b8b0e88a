"""Collecting the gate: one node per artifact, one item per applicable check (and device), built by the plugin
itself rather than by pytest walking the roots; and the hooks of a run with artifact roots (selection,
releases of models after their last test, what baselines were saved)."""

from __future__ import annotations

import os
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import pytest

from model_checks.plugin.state import ITEM_KEY, RELEASE_KEY, SESSION_KEY, artifact_of, options
from model_checks.plugin.verdict import PROPERTY


def _arg_path(config: pytest.Config, arg: str) -> Path:
    return Path(os.path.normpath(config.invocation_params.dir / str(arg).split("::")[0]))


FIXTUREINFO_KEY = pytest.StashKey[dict]()
MARKS_KEY = pytest.StashKey[dict]()
_SAVED_SESSIONS = f"{PROPERTY}.baseline_sessions"  # the property of a budget's saved baseline (verdict.record)


@cache  # once a process, however many runs it makes
def exit_without_collection() -> None:
    """For a run of the gate's own items only: the interpreter's exit skips the cyclic collector's passes over
    what the process holds (imports, config, items, reports), 50-100 ms of a gate run (issue 24, rows a and b).
    `gc.freeze` at exit, so that a caller of pytest.main that goes on has its collector as it was (`Gate._thaw`);
    what finalizers of cyclic garbage would do at exit the language does not promise, and the reports are closed by
    then."""
    import atexit
    import gc

    atexit.register(gc.freeze)


def _left_behind(settings: tuple[str, ...], isolate: str) -> str:
    """The header's line on the precision settings the models' workers do not inherit (isolation.workers.ENV_DENIED)."""
    if isolate == "off":
        return (
            f"model-checks: {' '.join(settings)} is in force: models run in this process (--model-checks-isolate off), "
            "and oneDNN computes fp32 layers in lower precision where it runs them"
        )
    return f"model-checks: {' '.join(settings)} stays with the gate: the models' workers compute fp32 layers in fp32"


class ModelChecksWarning(pytest.PytestWarning):
    """Something under an artifact root the gate ignored on purpose (a Python file pytest would have imported)."""


class Gate:
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
        self.shard: set[str] | None = None  # the artifact ids of this run's shard (--model-checks-shard), None for all
        self._measuring: str | None = None  # the artifact whose workers' peak memory is being measured
        self._base = os.path.join(config.rootpath, "")  # the rootdir with a separator after it
        self.selectors = [self._nodeid(_arg_path(config, a), a.partition("::")[2]) for a in selectors]
        self._frozen = False  # whether this run froze the heap at the end of its collection (`_freeze`)
        # Registered now, during the plugin's pytest_configure, which runs before pytest's own plugins': cleanups run
        # last first, so the thaw comes after pytest's end-of-run collection (unraisableexception's).
        config.add_cleanup(self._thaw)

    def _nodeid(self, path: Path | str, rest: str) -> str:
        """The node id of a manifest (or a selector naming one), its directory names escaped: they head every
        line of the log about the artifact, so a name from a pull request can never start a line or colour it."""
        from model_checks.safety.text import printable

        text, base = os.fspath(path), self._base
        if os.sep == "/" and text.startswith(base) and os.path.normpath(text) == text:  # the usual case, as text
            rel = text[len(base) :]
        else:
            from model_checks.core.roots import relative

            rel = relative(Path(path), self.config.rootpath)
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

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        from model_checks.core.roots import display

        n = len(self.gs.artifacts)
        where = ", ".join(display(r, config.rootpath) for r in self.gs.roots)
        opts = options(config)
        trust = "on" if opts.trust_code else "off"
        shard = f", shard {opts.shard[0]}/{opts.shard[1]}" if opts.shard else ""
        from model_checks.core.machine import kernel_settings, this_machine
        from model_checks.isolation.workers import ENV_DENIED

        left = kernel_settings(names=sorted(ENV_DENIED))
        return [
            f"model-checks: {n} artifact{'s' if n != 1 else ''} under {where} (isolate={opts.isolate}, trust-code={trust}{shard})",
            f"model-checks: machine: {this_machine().describe()}",
            *([_left_behind(left, opts.isolate)] if left else []),
        ]

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from model_checks.core.roots import display, inside, no_artifact_message

        self._interrupt_on_sigterm()

        for r in self.gs.roots:
            if not r.is_dir():
                raise pytest.UsageError(
                    f"model-checks: artifact root {display(r, self.config.rootpath)} is not a directory "
                    "(from --model-checks or model_checks_roots)"
                )
        # A conftest.py pytest imported at startup, before this plugin could step in (a root named test* below a
        # path pytest was given): its code has run, so the run is refused rather than trusted.
        for plugin in self.config.pluginmanager.get_plugins():
            f = getattr(plugin, "__file__", None)
            if f and any(inside(Path(f), r) for r in self.gs.roots):
                raise pytest.UsageError(
                    f"model-checks: pytest imported {display(Path(f), self.config.rootpath)} from inside an artifact root "
                    "at startup (a folder named test* below a path it was given); nothing under a root may run: "
                    "remove the file or rename the folder"
                )
        found = {a.root for a in self.gs.artifacts}
        empty = [r for r in self.gs.roots if r not in found]
        if empty:
            raise pytest.UsageError("\n".join(no_artifact_message(r, self.config.rootpath) for r in empty))

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        from model_checks.core.roots import inside

        p = Path(os.path.normpath(collection_path))
        return True if any(inside(p, r) for r in self.gs.roots) else None

    @pytest.hookimpl(tryfirst=True)  # before -k / -m deselect, so they apply to the gate's tests too
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        self._warn_python_files(config)
        hook = config.hook
        shard = self._shard(config)
        for art in self.gs.artifacts:
            if shard is not None and art.id not in shard:
                continue
            nodeid = self._nodeid(os.path.join(art.dir, "metadata.yaml"), "")  # (text: art.manifest_path, as a Path)
            mod = ArtifactModule.from_parent(session, path=config.rootpath, name=art.id, nodeid=nodeid)
            mod.artifact = art
            new = [i for i in mod.collect() if self._selected(i.nodeid)] if self.selectors else list(mod.collect())
            if not new:
                continue
            hook.pytest_collectstart(collector=mod)
            for item in new:
                hook.pytest_itemcollected(item=item)
            hook.pytest_collectreport(report=pytest.CollectReport(nodeid, "passed", None, new))
            items.extend(new)
        if shard is not None:  # a user's test of an artifact of another shard runs there
            kept = [i for i in items if (a := artifact_of(i)) is None or a.id in shard]
            if len(kept) < len(items):
                config.hook.pytest_deselected(items=[i for i in items if i not in kept])
                items[:] = kept
        unmatched = [s for s in self.selectors if not any(self._matches(s, i.nodeid) for i in items)]
        if unmatched:
            raise pytest.UsageError(
                f"model-checks: not found: {', '.join(unmatched)} (no artifact check there; "
                f"{len(self.gs.artifacts)} artifact(s) under {', '.join(str(r) for r in self.gs.roots)})"
            )

    def _shard(self, config: pytest.Config) -> set[str] | None:
        """The artifact ids of this run's shard (`--model-checks-shard K/N`), or None for all."""
        opts = options(config)
        if opts.shard is None:
            return None
        from model_checks.core.errors import ModelChecksError
        from model_checks.core.shards import groups, read_durations, shard_ids

        try:
            durations = read_durations(opts.shard_weights) if opts.shard_weights else None
        except ModelChecksError as e:
            raise pytest.UsageError(f"model-checks: --model-checks-shard-weights: {e}") from None
        gs = groups(self.gs.artifacts, self.gs.models_of)
        k, n = opts.shard
        if n > max(1, len(gs)):
            raise pytest.UsageError(
                f"model-checks: --model-checks-shard {k}/{n}: the tree has {len(gs)} group(s) of artifacts "
                f"(an artifact with those it shares a model with), so at most {max(1, len(gs))} shard(s) "
                "hold any; lower N"
            )
        self.shard = shard_ids(gs, k, n, durations)
        return self.shard

    def _warn_python_files(self, config: pytest.Config) -> None:
        import warnings

        from model_checks.core.roots import display, python_files

        for r in self.gs.roots:
            files = python_files(r, config.getini("python_files"))
            if files:
                names = ", ".join(display(f, config.rootpath) for f in files[:5]) + (
                    f" and {len(files) - 5} more" if len(files) > 5 else ""
                )
                warnings.warn(
                    ModelChecksWarning(
                        f"model-checks: ignored {len(files)} Python file(s) under the artifact root "
                        f"{display(r, config.rootpath)}: {names}. Nothing under a root is imported or run; "
                        "tests of artifacts belong outside it (take the model_checks_artifact fixture)"
                    ),
                    stacklevel=1,
                )

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """A user's test that takes `model_checks_artifact` runs once per valid artifact (the gate's items carry theirs)."""
        if "model_checks_artifact" not in metafunc.fixturenames:
            return
        arts = [a for a in self.gs.artifacts if a.manifest is not None]
        if "model_checks_device" in metafunc.fixturenames:
            metafunc.parametrize(
                ("model_checks_artifact", "model_checks_device"), _device_params(arts), scope="function"
            )
            return
        metafunc.parametrize("model_checks_artifact", arts, ids=[a.id for a in arts], scope="function")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._start_workers(session)
        if session.items and all(ITEM_KEY in item.stash for item in session.items):
            self._freeze()
            exit_without_collection()

    def _freeze(self) -> None:
        """For a run of the gate's own items: what the process holds once they are collected (imports, the config,
        the items) is left out of the cyclic collector's passes to the end of the run (`gc.freeze`). The full passes
        during the items and pytest's own two at its end walked all of it again for the few objects an item leaves,
        a tenth of the gate's own CPU on 97 small models (issue 24, row a). Objects made from here on are collected
        as ever; the heap is given back as it was at the run's last cleanup (`_thaw`), so a caller of pytest.main
        that goes on, and what it collects, are as without the gate. A heap the caller froze itself is left as it
        is. Only the gate's items run frozen: a run with a team's own tests keeps the collector CPython gives it."""
        import gc

        if gc.get_freeze_count() == 0:
            gc.freeze()
            self._frozen = True

    def _thaw(self) -> None:
        if self._frozen:
            import gc

            gc.unfreeze()
            self._frozen = False

    def _release_plan(self, session: pytest.Session) -> dict[str, list[Path]]:
        """Plan releases: each model is released after the last test that may need it. Made at the first teardown
        (`pytest_runtest_teardown`), from the same final list of items: a run that collects and runs nothing
        (--collect-only, --co under xdist's controller) does not resolve every artifact's models for it."""
        last: dict[Path, str] = {}
        runs: list[tuple[Any, pytest.Item]] = []  # (artifact, its last item) for each run of items of one artifact
        for item in session.items:
            known = item.stash.get(ITEM_KEY, None)  # a gate item's own artifact (artifact_of, without a second lookup)
            art = known[0] if known is not None else artifact_of(item)
            if runs and runs[-1][0] is art:
                runs[-1] = (art, item)
            else:
                runs.append((art, item))
        for art, item in runs:  # an artifact's models asked for once per run of its tests, not once per test
            if art is not None:
                for p in self.gs.models_of(art):
                    last[p] = item.nodeid
        plan: dict[str, list[Path]] = {}
        for p, nodeid in last.items():
            plan.setdefault(nodeid, []).append(p)
        return plan

    def _start_workers(self, session: pytest.Session) -> None:
        """Start the workers the selected checks run in now: their start-up (an interpreter, the runtime's import)
        overlaps the rest of the session's start instead of delaying its first check."""
        pool = self.gs.pool
        if pool.isolation is None or session.config.option.collectonly:
            return
        from model_checks.backends import require_trust_for

        formats = set()
        for a in {id(a): a for item in session.items if (a := artifact_of(item)) is not None and a.format}.values():
            try:
                require_trust_for(a.model_path, a.format, pool.trust_code)  # no worker for a model that will be refused
            except Exception:  # refused, or no model file: its checks say so; nothing to start early for it
                continue
            formats.add(a.format)
        if formats and pool.workers is not None:
            pool.workers.start_early(formats)

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        art = artifact_of(item)
        if art is not None and art.id != self._measuring:  # an artifact's first check: its peak memory starts here
            self._measuring = art.id
            self.gs.pool.reset_peak_memory()

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        plan = item.config.stash.get(RELEASE_KEY, None)
        if plan is None:
            plan = item.config.stash[RELEASE_KEY] = self._release_plan(item.session)
        for p in plan.get(item.nodeid, []):
            self.gs.pool.release(p)
        if nextitem is not None and hasattr(item.config, "workerinput"):
            self._release_passed(item, nextitem)

    def _release_passed(self, item: pytest.Item, nextitem: pytest.Item) -> None:
        """In an xdist worker, an artifact's models the next item here does not use are released when this process
        moves on from the artifact. The plan releases a model after the last item that needs it in the collected
        order, but under xdist's own scheduling (`--model-checks-dist load`) that item is often another worker's,
        and the model stayed loaded here to the end. xdist deals items in their collected order, so a worker that
        moved on gets none of that artifact's again (if it does, as work stealing may, the model loads again)."""
        art, following = artifact_of(item), artifact_of(nextitem)
        if art is None or following is art:
            return
        needed = set(self.gs.models_of(following)) if following is not None else set()
        for p in self.gs.models_of(art):
            if p not in needed:
                self.gs.pool.release(p)

    def _interrupt_on_sigterm(self) -> None:
        # SIGTERM (a CI job cancelled, a timeout) ends the session as Ctrl-C does: workers and services stop and their
        # temporary directories are removed, instead of the process vanishing and leaving them behind.
        import signal
        import threading

        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            self._sigterm = signal.signal(signal.SIGTERM, _interrupt)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # The workers exit while pytest writes its summary; they are reaped, and the SIGTERM handler that would stop
        # them is given back, at unconfigure.
        self.gs.pool.wind_down()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.gs.pool.close()
        if getattr(self, "_sigterm", None) is not None:
            import signal

            signal.signal(signal.SIGTERM, self._sigterm)
            self._sigterm = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # only a test that saved a baseline says how many sessions it pools: the facts of the others are not read
        if report.when != "call" or not any(k == _SAVED_SESSIONS for k, _ in report.user_properties):
            return
        from model_checks.plugin.verdict import read_record

        p = read_record(report.user_properties)
        if p and p["figures"].get("baseline_sessions"):
            self.saved[(p["artifact"], p["check"], p["figures"].get("device"))] = int(p["figures"]["baseline_sessions"])

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        """How often models were loaded (all workers together), what --model-checks-update-baselines stored, and how
        many more sessions a verdict needs."""
        from model_checks.plugin.parallel import load_line

        par = self.config.pluginmanager.get_plugin("model_checks_parallel")
        line = (
            load_line(par.loads, par.workers) if par is not None and par.workers else load_line(self.gs.pool.loads, 0)
        )
        if line:
            terminalreporter.write_line(line)
        if not self.saved:
            return
        from model_checks.checks.budgets.baseline import MIN_SESSIONS
        from model_checks.core.roots import relative

        where = relative(options(self.config).baselines, self.config.rootpath)
        terminalreporter.write_line(f"model-checks: saved {len(self.saved)} baseline(s) to {where}:")
        for (aid, check, device), n in sorted(self.saved.items()):
            more = MIN_SESSIONS - n
            needs = f"{more} more session(s) before it can call a regression" if more > 0 else "ready to compare"
            terminalreporter.write_line(f"  {check} of {aid} on {device}: {n} session(s) pooled, {needs}")


class CheckItem(pytest.Function):
    """One built-in check of one artifact. Its location is the artifact's metadata.yaml, so a skip in the short
    summary points at the artifact it concerns, not at the gate's test function."""

    def reportinfo(self):  # type: ignore[no-untyped-def]
        return self.parent.manifest_location, 0, self.name


class ArtifactModule(pytest.Module):
    """One artifact, collected as the gate's test module (`model_checks.plugin.gate`); see `Gate` for its path."""

    artifact: Any = None

    @cached_property
    def manifest_location(self) -> str:
        """Where its items report (`CheckItem.reportinfo`): the artifact's metadata.yaml relative to where pytest was
        started, so a skip's location in junit.xml names no checkout directory; escaped, since skips and the short
        summary print it. Worked out once for the artifact, not for each of its items and again for each skip."""
        from model_checks.safety.text import printable

        return printable(os.path.relpath(self.artifact.manifest_path, self.config.invocation_params.dir))

    def _getobj(self):  # type: ignore[no-untyped-def]
        # pytest.Module imports its path; an artifact's node is bound to the gate's test functions instead. Kept,
        # since items need a Module parent for fixture resolution (private; pytest 8 and 9, pinned by tests/plugin).
        from model_checks.plugin import gate

        return gate

    def collect(self):  # type: ignore[no-untyped-def]
        # Items are built directly, one per applicable check (and device), in the registry's order:
        # pytest's per-function parametrization machinery, run once per artifact, was most of the time
        # collecting 1,000 artifacts took (bench/collect.py). The item carries its artifact and device,
        # which the `model_checks_artifact` and `model_checks_device` fixtures hand to the test.
        from model_checks.checks import applicable, get

        art = self.artifact
        # What a check function's items need of fixtures is the same for every artifact (their only parents are
        # an ArtifactModule and the session, so the same fixtures are visible to all): worked out once, not per item.
        fixtureinfo = self.config.stash.setdefault(FIXTUREINFO_KEY, {})
        no_benchmark = (
            None
            if self.config.pluginmanager.hasplugin("benchmark")
            else pytest.mark.skip(
                reason="pytest-benchmark is disabled (-p no:benchmark): budgets are measured through its benchmark fixture"
            )
        )
        # check name -> its marks and their keywords, made once a session (as Node.add_marker adds each: the mark
        # to own_markers and under its name to the keywords; all of them at once)
        marks_of = self.config.stash.setdefault(MARKS_KEY, {})
        gate = self.obj  # the gate's test module (a property: asked once here, not once per check)
        for name in applicable(art, nightly=options(self.config).nightly_report is not None):
            check = get(name)
            fn = gate.run_per_device if check.per_device else gate.run_check
            marks = marks_of.get(name)
            if marks is None:
                marks = marks_of[name] = _marks(
                    [pytest.mark.model_checks, *(getattr(pytest.mark, m) for m, _ in check.markers)]
                )
            for variant in check.variants(art.manifest) if check.variants else [None]:
                # pytest 9 builds a node id from originalname + callspec; with neither, from the full name
                item = CheckItem.from_parent(
                    self,
                    name=f"test_{name}[{art.id}{'-' + variant if variant else ''}]",
                    callobj=fn,
                    fixtureinfo=fixtureinfo.get(fn.__name__),
                )
                fixtureinfo.setdefault(fn.__name__, item._fixtureinfo)
                item.stash[ITEM_KEY] = (art, variant, name)
                if check.per_device:
                    key = (name, variant)
                    if key not in marks_of:
                        decorators = [getattr(pytest.mark, variant), *([no_benchmark] if no_benchmark else [])]
                        marks_of[key] = _marks(marks[2] + decorators)
                    own, keywords, _ = marks_of[key]
                else:
                    own, keywords, _ = marks
                item.own_markers.extend(own)
                item.keywords.update(keywords)
                yield item


def _marks(decorators: list) -> tuple[list, dict, list]:
    """(the marks, {name: mark}, the decorators): what Node.add_marker adds for each decorator, in order (the
    keywords' values are the marks, as pytest 9 keeps them; -k reads only their names)."""
    return [d.mark for d in decorators], {d.name: d.mark for d in decorators}, decorators


def _device_params(arts: list) -> list:
    """For a user's test taking `model_checks_device`: (artifact, device) for each device any budget of the
    artifact declares, id `<id>-<device>`, marked with the device's marker (cpu, gpu)."""
    from model_checks.checks.budgets.spec import CHECK_KEYS, devices_for

    params = []
    for a in arts:
        devices = sorted({d for c in CHECK_KEYS for d in devices_for(a.manifest, c)})
        params += [pytest.param(a, d, id=f"{a.id}-{d}", marks=[getattr(pytest.mark, d)]) for d in devices]
    return params


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"model-checks: stopped by signal {signum}")
