"""`reports/summary.md`: one row per artifact, built from the figures each check attaches to its test
report, so it also works when the checks ran in pytest-xdist workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from model_checks.core.fileio import write_text
from model_checks.plugin.verdict import OUTCOME, read_record
from model_checks.safety.text import md_cell

COLUMNS = ("manifest", "integrity", "metadata", "limits", "equivalence", "accuracy")


def _fmt(v: object, spec: str = ".3g") -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return md_cell(str(v))


def _served(f: dict, status: str | None) -> str:
    """test_serving's cell: its status, with the achieved rate and p99 when it measured them."""
    if f.get("serving_p99_ms") is None:
        return status or "-"
    return f"{status} ({f['serving_achieved_rate']:.1f}, {f['serving_p99_ms']:.2f})"


@dataclass(eq=False)  # a plugin object must stay hashable: pluggy keeps plugins in sets
class SummaryReport:
    path: Path
    rows: dict[str, dict] = field(default_factory=dict)
    expected: dict[str, list[str]] = field(default_factory=dict)  # the checks collected, by artifact id
    interrupted: bool = False

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from model_checks.plugin.state import ITEM_KEY

        for item in session.items:
            if ITEM_KEY in item.stash:
                art, device = item.stash[ITEM_KEY]
                self.expected.setdefault(art.id, []).append(item.name.split("[", 1)[0].removeprefix("test_") + (f"[{device}]" if device else ""))

    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True

    def _not_checked(self) -> dict[str, list[str]]:
        done = {aid: set(r["status"]) for aid, r in self.rows.items()}
        out = {}
        for aid, names in self.expected.items():
            left = [n for n in names if n.split("[", 1)[0] not in done.get(aid, set())]
            if left:
                out[aid] = left
        return out

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        p = read_record(report.user_properties)
        if p is None:
            return
        row = self.rows.setdefault(p["artifact"], {"format": p.get("format"), "figures": {}, "status": {}})
        if report.when == "call" or report.outcome != "passed":
            status = OUTCOME.get(report.outcome, report.outcome)
            if report.when != "call" and report.outcome == "failed":
                status = "ERROR"
            row["status"][p["check"]] = status
        row["figures"].update({k: v for k, v in (p.get("figures") or {}).items() if v is not None})

    def render(self) -> str:
        head = ["artifact", "format", "precision", "opset", "size (MB)", "worst rel_l2", "worst MAE", "accuracy drop", "serving (req/s, p99 ms)", *COLUMNS]
        lines = ["# model-checks summary", ""]
        missing = self._not_checked() if self.interrupted else {}
        if self.interrupted:
            count = sum(map(len, missing.values()))
            lines += [f"**INTERRUPTED: this run was stopped before it finished; {count} collected check(s) of {len(missing)} artifact(s) "
                      "did not run, so this summary is incomplete and proves nothing about them.**", ""]
        lines += [f"{len(self.rows)} artifact(s).", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for aid in sorted(self.rows):
            r = self.rows[aid]
            f = r["figures"]
            cells = [f"`{md_cell(aid)}`", _fmt(r["format"]), _fmt(f.get("precision")), _fmt(f.get("opset")), _fmt(f.get("size_mb"), ".3f"),
                     _fmt(f.get("rel_l2")), _fmt(f.get("mae")), _fmt(f.get("accuracy_drop"), "+.4f"),
                     _served(f, r["status"].get("serving"))]
            cells += [r["status"].get(c, "-") for c in COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
        failed = sum(1 for r in self.rows.values() if any(s in ("FAIL", "ERROR") for s in r["status"].values()))
        if self.interrupted:
            lines += ["", f"{failed} artifact(s) with a failing check before the interruption." if failed else "No check failed before the interruption.",
                      "", "## Not checked (interrupted)", ""]
            lines += [f"- `{md_cell(aid)}`: {', '.join(names)}" for aid, names in sorted(missing.items())] or ["- (every collected check had run)"]
        else:
            lines += ["", f"{failed} artifact(s) with a failing check." if failed else "Every collected check passed or did not apply."]
        return "\n".join(lines) + "\n"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.interrupted = self.interrupted or exitstatus == pytest.ExitCode.INTERRUPTED
        write_text(self.path, self.render())

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        terminalreporter.write_line(f"model-checks: summary written to {self.path}")
