"""`reports/summary.md`: one row per artifact, built from the figures each check attaches to its test
report, so it also works when the checks ran in pytest-xdist workers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from model_checks.core.fileio import write_text
from model_checks.plugin.verdict import read_record
from model_checks.safety.text import md_cell, md_text

RECORD_SCHEMA = 1
STATUS = {"passed": "pass", "failed": "fail", "skipped": "skip"}  # a test report's outcome as the summary writes it
FAILED = ("fail", "error")


def record_path(summary: Path) -> Path:
    """The run record beside a summary: `reports/summary.md` -> `reports/summary.json`."""
    return summary.with_suffix(".json")


def _fmt(v: object, spec: str = ".3g") -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return md_text(str(v))  # not a code span: markup in a figure (a merged record's) stays text


@dataclass(eq=False)  # a plugin object must stay hashable: pluggy keeps plugins in sets
class Summary:
    """summary.md as a value: fed one test report at a time (`add`), or a recorded run at once (`replay`, as
    `model-checks merge` does); rendered with `render`, recorded for a later merge with `record`."""

    path: Path
    rows: dict[str, dict] = field(default_factory=dict)
    expected: dict[str, list[str]] = field(default_factory=dict)  # the checks collected, by artifact id
    interrupted: bool = False
    shard: tuple[int, int] | None = None  # --model-checks-shard K/N, named in the record for `model-checks merge`
    records: list[dict] = field(
        default_factory=list
    )  # every report with model-checks facts, as `model-checks merge` replays them
    lost: dict[str, str] = field(
        default_factory=dict
    )  # artifact id -> why it was not checked (a shard whose node died)
    machines: dict[str, dict] = field(
        default_factory=dict
    )  # where each replayed run ran, by shard label (merge); empty: here

    def _not_checked(self) -> dict[str, list[str]]:
        done = {aid: set(r["status"]) for aid, r in self.rows.items()}
        out = {}
        for aid, names in self.expected.items():
            left = [n for n in names if n not in done.get(aid, set())]
            if left:
                out[aid] = left
        return out

    def add(self, nodeid: str, when: str, outcome: str, properties: list[tuple[str, object]]) -> None:
        """One test report (its node id, phase, outcome and user properties); reports of no artifact are ignored."""
        p = read_record(properties)
        if p is None:
            return
        self.records.append(
            {"nodeid": nodeid, "when": when, "outcome": outcome, "properties": [[k, v] for k, v in properties]}
        )
        row = self.rows.setdefault(
            p["artifact"], {"format": p.get("format"), "figures": {}, "status": {}, "reasons": {}, "variants": {}}
        )
        figures = {k: v for k, v in (p.get("figures") or {}).items() if v is not None}
        variant = p.get("variant") or figures.get("device")  # a record of before variants named only a budget's device
        key = p["check"] + (f"[{variant}]" if variant else "")
        if when == "call" or outcome != "passed":
            status = STATUS.get(outcome, outcome)
            if when != "call" and outcome == "failed":
                status = "error"
            row["status"][key] = status
            if p.get("reason"):
                row["reasons"][key] = p["reason"]
        if variant and not figures.get("device"):  # another runtime's figures: its own cell's, never over the model's
            row["variants"].setdefault(key, {}).update(figures)
        else:
            row["figures"].update(figures)

    @property
    def failed(self) -> int:
        """Artifacts with a failing check, or lost."""
        failing = sum(1 for r in self.rows.values() if any(s in FAILED for s in r["status"].values()))
        return failing + len(set(self.lost) - set(self.rows))

    def _columns(self) -> list:
        """The checks with a column: every declared check that ran (or was collected) in this run; with none (a run
        of lost shards), those every artifact gets."""
        from model_checks.checks import registry

        seen = {k.split("[", 1)[0] for r in self.rows.values() for k in r["status"]}
        seen |= {n.split("[", 1)[0] for names in self.expected.values() for n in names}
        checks = registry().values()
        return [c for c in checks if c.name in seen] or [c for c in checks if c.applies is None]

    @staticmethod
    def _cell(check, row: dict) -> str:  # type: ignore[no-untyped-def]
        """A check's cell in an artifact's row: its status (`fail: <reason>` when it failed), one per variant (a budget's
        device, another runtime), through the check's own `cell` when it declares one."""
        keys = [k for k in row["status"] if k.split("[", 1)[0] == check.name]
        if not keys:
            return "-"
        parts = []
        for k in keys:
            status = row["status"][k]
            text = (
                f"{status}: {md_cell(row['reasons'][k])}"
                if status in FAILED and row.get("reasons", {}).get(k)
                else status
            )
            text = check.cell(text, row.get("variants", {}).get(k, row["figures"])) if check.cell else text
            parts.append(f"{k.split('[', 1)[1].rstrip(']')} {text}" if "[" in k else text)
        return "; ".join(parts)

    def render(self) -> str:
        from model_checks.checks import registry

        columns = self._columns()
        figures = [f for c in registry().values() for f in c.figures]
        head = ["artifact", "format", *(f.header for f in figures), *(c.header for c in columns)]
        lines = ["# model-checks summary", ""]
        missing = self._not_checked() if self.interrupted else {}
        if self.interrupted:
            count = sum(map(len, missing.values()))
            lines += [
                f"**INTERRUPTED: this run was stopped before it finished; {count} collected check(s) of {len(missing)} artifact(s) "
                "did not run, so this summary is incomplete and proves nothing about them.**",
                "",
            ]
        lines += [*self._machine_lines(), ""]
        lines += [
            f"{len(self.rows) + len(set(self.lost) - set(self.rows))} artifact(s).",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for aid in sorted(self.rows):
            r = self.rows[aid]
            cells = [f"`{md_cell(aid)}`", _fmt(r["format"]), *(_fmt(r["figures"].get(f.key), f.spec) for f in figures)]
            cells += [self._cell(c, r) for c in columns]
            lines.append("| " + " | ".join(cells) + " |")
        lost = sorted(set(self.lost) - set(self.rows))
        lines += [
            f"| `{md_cell(aid)}` | " + " | ".join(["-"] * (1 + len(figures)) + ["LOST"] * len(columns)) + " |"
            for aid in lost
        ]
        failed = self.failed
        if lost:
            lines += ["", f"## Lost ({len(lost)} artifact(s) not checked)", ""]
            lines += [f"- `{md_cell(aid)}`: {md_cell(self.lost[aid])}" for aid in lost]
        if self.interrupted:
            lines += [
                "",
                f"{failed} artifact(s) with a failing check before the interruption."
                if failed
                else "No check failed before the interruption.",
                "",
                "## Not checked (interrupted)",
                "",
            ]
            lines += [f"- `{md_cell(aid)}`: {', '.join(names)}" for aid, names in sorted(missing.items())] or [
                "- (every collected check had run)"
            ]
        else:
            lines += [
                "",
                f"{failed} artifact(s) with a failing check{' or lost' if lost else ''}."
                if failed
                else "Every collected check passed or did not apply.",
            ]
        return "\n".join(lines) + "\n"

    def write(self) -> list[Path]:
        """summary.md and the run record beside it."""
        return [
            write_text(self.path, self.render()),
            write_text(record_path(self.path), json.dumps(self.record(), indent=1, sort_keys=True) + "\n"),
        ]

    def _machine_lines(self) -> list[str]:
        from model_checks.core.machine import describe_record, this_machine

        if not self.machines:
            return [f"Machine: {md_cell(this_machine().describe())}."]
        distinct = {describe_record(m) for m in self.machines.values()}
        if len(distinct) == 1:
            return [f"Machine: {md_cell(distinct.pop())}."]
        return [
            "Machines: the shards ran on different machines; timings and int8 verdicts may depend on which:",
            "",
            *(f"- shard {label}: {md_cell(describe_record(m))}" for label, m in sorted(self.machines.items())),
        ]

    def record(self) -> dict:
        """What this run said, for `model-checks merge`: its shard, the artifacts it gated, each report's facts."""
        from model_checks.core.machine import this_machine

        return {
            "schema": RECORD_SCHEMA,
            "shard": list(self.shard) if self.shard else None,
            "interrupted": self.interrupted,
            "artifacts": sorted(set(self.rows) | set(self.expected)),
            "expected": self.expected,
            "reports": self.records,
            **({"machines": self.machines} if self.machines else {"machine": this_machine().record()}),
        }

    def replay(self, record: dict, label: str = "") -> None:
        """Take a recorded run's reports into this summary, as if they had been reported here (`label`: the shard)."""
        if record.get("machine"):
            self.machines[label or str(len(self.machines) + 1)] = record["machine"]
        for aid, names in record.get("expected", {}).items():
            self.expected.setdefault(aid, []).extend(names)
        self.interrupted = self.interrupted or bool(record.get("interrupted"))
        for r in reports_of(record):
            self.add(r["nodeid"], r["when"], r["outcome"], r["properties"])


def reports_of(record: dict) -> Iterator[dict[str, Any]]:
    """The test reports of a run record: nodeid, when, outcome and properties (a list of (key, value))."""
    for r in record.get("reports", []):
        yield {**r, "properties": [tuple(kv) for kv in r["properties"]]}


@dataclass(eq=False)  # a plugin object must stay hashable: pluggy keeps plugins in sets
class SummaryReport(Summary):
    """The Summary of a pytest run: what was collected, each report, an interruption; written when the session ends."""

    failure: str | None = None  # why the summary could not be written, said at the end of the session

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from model_checks.plugin.state import ITEM_KEY

        for item in session.items:
            if ITEM_KEY in item.stash:
                art, device, check = item.stash[ITEM_KEY]
                self.expected.setdefault(art.id, []).append(check + (f"[{device}]" if device else ""))

    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.add(report.nodeid, report.when, report.outcome, report.user_properties)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.interrupted = self.interrupted or exitstatus == pytest.ExitCode.INTERRUPTED
        try:
            self.write()
        except OSError as e:
            # the session's verdicts stand; a summary that cannot be written is said, as the nightly report's is
            from model_checks.safety.text import printable

            where, why = printable(str(self.path)), printable(e.strerror or str(e))
            self.failure = f"model-checks: the summary could not be written to {where}: {why}"

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        if self.failure:
            terminalreporter.write_line(self.failure, red=True)
        else:
            terminalreporter.write_line(f"model-checks: summary written to {self.path}")


def machine_warning(records: dict[str, dict]) -> str | None:
    """When runs (shard label -> run record) ran on different machines: which, and the verdicts of theirs that may
    depend on it (timings; int8 numbers differ between CPUs with and without VNNI). None when they agree."""
    from model_checks.checks import registry
    from model_checks.core.machine import describe_record

    dependent = {name for name, c in registry().items() if c.machine_dependent}

    seen = {label: describe_record(r["machine"]) for label, r in records.items() if r.get("machine")}
    if len(set(seen.values())) <= 1:
        return None
    verdicts = []
    for label, r in sorted(records.items()):
        for report in reports_of(r):
            p = read_record(report["properties"])
            if (
                p
                and report["when"] == "call"
                and (p["check"] in dependent or (p.get("figures") or {}).get("int8_kernels"))
            ):
                verdicts.append(f"{p['check']} of {p['artifact']} (shard {label})")
    machines = "; ".join(f"shard {label}: {text}" for label, text in sorted(seen.items()))
    shown = ", ".join(verdicts[:12]) + (f" and {len(verdicts) - 12} more" if len(verdicts) > 12 else "")
    return (
        f"the shards ran on different machines ({machines}); verdicts that may depend on the machine: "
        f"{shown or 'none recorded'}. Compare timings and int8 results across shards with care, or pin the CI jobs to one machine type"
    )
