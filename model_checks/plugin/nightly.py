"""Gathers the figures of a pytest run for the nightly report and writes it when the session ends. Registered
by the gate's plugin when `--model-checks-nightly-report DIR` is given."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from model_checks.plugin.verdict import read_record


@dataclass(eq=False)  # a plugin object must stay hashable: pluggy keeps plugins in sets
class NightlyReport:
    directory: Path
    config: pytest.Config
    artifacts: dict = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    failure: str | None = None  # why the report could not be written, said at the end of the session

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from model_checks.nightly.document import gather

        gather(self.artifacts, read_record(report.user_properties), report.when, report.outcome)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if session.config.option.collectonly:  # nothing ran: keep the last report
            return
        from model_checks.nightly.write import write_nightly

        saved = bool(self.config.getoption("benchmark_autosave", None) or self.config.getoption("benchmark_save", None))
        try:
            storage = self.config.getoption("benchmark_storage", None)
            self.written = write_nightly(self.artifacts, self.directory, storage, saved)
        except Exception as e:  # the session's verdicts stand; a report that cannot be written is said, not a traceback
            from model_checks.safety.text import printable

            why = f"{type(e).__name__}: {printable(str(e))[:300]}"
            self.failure = f"model-checks: the nightly report could not be written: {why}"

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        if self.failure:
            terminalreporter.write_line(self.failure, red=True)
        if not self.written:
            return
        terminalreporter.write_line(
            f"model-checks: nightly report written to {self.directory / 'nightly.md'} and nightly.html"
        )
