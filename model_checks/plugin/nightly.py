"""Gathers the figures of a pytest run for the nightly report and writes it when the session ends. Registered
by the gate's plugin when `--model-checks-nightly-report DIR` is given."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

from model_checks.core.session import read_record

OUTCOME = {"passed": "pass", "failed": "FAIL", "skipped": "skip"}


@dataclass(eq=False)  # a plugin object must stay hashable: pluggy keeps plugins in sets
class NightlyReport:
    directory: Path
    config: pytest.Config
    artifacts: dict = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from model_checks.nightly.document import ArtifactFigures

        p = read_record(report.user_properties)
        if p is not None and (report.when == "call" or report.outcome != "passed"):
            self.artifacts.setdefault(p["artifact"], ArtifactFigures()).add(p["check"], OUTCOME.get(report.outcome, report.outcome), p.get("figures") or {})

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if session.config.option.collectonly:  # nothing ran: keep the last report
            return
        from model_checks.checks.budgets.fingerprint import fingerprint
        from model_checks.nightly import document, render
        from model_checks.nightly.history import load_runs, storage_dir

        machine = fingerprint()
        runs = load_runs(storage_dir(self.config.getoption("benchmark_storage", None)), machine)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if not (self.config.getoption("benchmark_autosave", None) or self.config.getoption("benchmark_save", None)):
            runs.append(document.as_stored_run(self.artifacts, now))  # not saved by pytest-benchmark: still the last point
        report = document.build(self.artifacts, runs, machine, now)
        self.written = render.write(report, self.directory, os.environ.get("GITHUB_STEP_SUMMARY"))

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        if not self.written:
            return
        terminalreporter.write_line(f"model-checks: nightly report written to {self.directory / 'nightly.md'} and nightly.html")
