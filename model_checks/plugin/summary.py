"""`reports/summary.md`: one row per artifact, built from the figures each check attaches to its test
report, so it also works when the checks ran in pytest-xdist workers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from model_checks.core.fileio import write_text
from model_checks.plugin.verdict import OUTCOME, read_record
from model_checks.safety.text import md_cell, md_text

COLUMNS = ("manifest", "integrity", "metadata", "limits", "equivalence", "accuracy")
RECORD_SCHEMA = 1


def record_path(summary: Path) -> Path:
    """The run record beside a summary: `reports/summary.md` -> `reports/summary.json`."""
    return summary.with_suffix(".json")


def _fmt(v: object, spec: str = ".3g") -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return md_text(str(v))  # not a code span: markup in a figure (a merged record's) stays text


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
    shard: tuple[int, int] | None = None  # --model-checks-shard K/N, named in the record for `model-checks merge`
    records: list[dict] = field(default_factory=list)  # every report with model-checks facts, as `model-checks merge` replays them
    lost: dict[str, str] = field(default_factory=dict)  # artifact id -> why it was not checked (a shard whose node died)

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
        self.records.append({"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
                             "properties": [[k, v] for k, v in report.user_properties]})
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
        lines += [f"{len(self.rows) + len(set(self.lost) - set(self.rows))} artifact(s).", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for aid in sorted(self.rows):
            r = self.rows[aid]
            f = r["figures"]
            cells = [f"`{md_cell(aid)}`", _fmt(r["format"]), _fmt(f.get("precision")), _fmt(f.get("opset")), _fmt(f.get("size_mb"), ".3f"),
                     _fmt(f.get("rel_l2")), _fmt(f.get("mae")), _fmt(f.get("accuracy_drop"), "+.4f"),
                     _served(f, r["status"].get("serving"))]
            cells += [r["status"].get(c, "-") for c in COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
        lost = sorted(set(self.lost) - set(self.rows))
        lines += [f"| `{md_cell(aid)}` | " + " | ".join(["-"] * 7 + ["LOST"] * len(COLUMNS)) + " |" for aid in lost]
        failed = sum(1 for r in self.rows.values() if any(s in ("FAIL", "ERROR") for s in r["status"].values())) + len(lost)
        if lost:
            lines += ["", f"## Lost ({len(lost)} artifact(s) not checked)", ""]
            lines += [f"- `{md_cell(aid)}`: {md_cell(self.lost[aid])}" for aid in lost]
        if self.interrupted:
            lines += ["", f"{failed} artifact(s) with a failing check before the interruption." if failed else "No check failed before the interruption.",
                      "", "## Not checked (interrupted)", ""]
            lines += [f"- `{md_cell(aid)}`: {', '.join(names)}" for aid, names in sorted(missing.items())] or ["- (every collected check had run)"]
        else:
            lines += ["", f"{failed} artifact(s) with a failing check{' or lost' if lost else ''}." if failed
                      else "Every collected check passed or did not apply."]
        return "\n".join(lines) + "\n"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.interrupted = self.interrupted or exitstatus == pytest.ExitCode.INTERRUPTED
        write_text(self.path, self.render())
        write_text(record_path(self.path), json.dumps(self.record(), indent=1, sort_keys=True) + "\n")

    def record(self) -> dict:
        """What this run said, for `model-checks merge`: its shard, the artifacts it gated, each report's facts."""
        return {"schema": RECORD_SCHEMA, "shard": list(self.shard) if self.shard else None, "interrupted": self.interrupted,
                "artifacts": sorted(set(self.rows) | set(self.expected)), "expected": self.expected, "reports": self.records}

    def replay(self, record: dict) -> None:
        """Take a recorded run's reports into this summary, as if they had been reported here."""
        for aid, names in record.get("expected", {}).items():
            self.expected.setdefault(aid, []).extend(names)
        self.interrupted = self.interrupted or bool(record.get("interrupted"))
        for report in reports_of(record):
            self.pytest_runtest_logreport(report)


def reports_of(record: dict) -> Iterator[Any]:
    """The test reports of a run record, with what reporters read of them (nodeid, when, outcome, user_properties)."""
    from types import SimpleNamespace

    for r in record.get("reports", []):
        yield SimpleNamespace(nodeid=r["nodeid"], when=r["when"], outcome=r["outcome"], user_properties=[tuple(kv) for kv in r["properties"]])

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        terminalreporter.write_line(f"model-checks: summary written to {self.path}")
